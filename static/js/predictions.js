// A guided step's prediction: answered before the step can be played, kept until
// the step has run, then shown beside the figure read from the student's own run.
//
// `ask` is what the page says the step asks ({kind, choices, measure, label, unit,
// reveal_after}); an entry is what is on record for the student ({choice} or
// {value}, and once the step ran, {measured: {before, after, t}}).

import { format } from "./values.js";

// Read the form's answer: {body} to send, or {error} naming what to fix.
export function readAnswer(ask, raw) {
  if (ask.kind === "choice") {
    const index = Number(raw);
    if (raw === null || raw === undefined || raw === "" || !Number.isInteger(index) || index < 0 || index >= ask.choices.length) {
      return { error: "Pick one of the choices first." };
    }
    return { body: { choice: index } };
  }
  const text = String(raw ?? "").trim();
  const value = Number(text);
  if (text === "" || !Number.isFinite(value)) {
    return { error: `Type a number first${ask.unit ? ` (in ${ask.unit})` : ""}.` };
  }
  return { body: { value } };
}

// What the student predicted, in words.
export function describePrediction(ask, entry) {
  if (!entry) return "";
  if (ask.kind === "choice") return `You predicted: ${ask.choices[entry.choice]}.`;
  return `You predicted: ${ask.label} ${format(entry.value, ask.unit)}.`;
}

// What their run measured, in words.
export function describeMeasured(ask, measured) {
  if (!measured) return "";
  const after = format(measured.after, ask.unit);
  const when = Number.isFinite(measured.t) ? ` at ${measured.t.toFixed(1)} simulated seconds` : "";
  if (measured.before === null || measured.before === undefined) {
    return `Your run measured: ${ask.label} ${after}${when}.`;
  }
  return `Your run measured: ${ask.label} ${format(measured.before, ask.unit)} before the step, ${after}${when}.`;
}

// The two side by side in a few words, for a bar with little room (a phone's).
export function shortReveal(ask, entry) {
  const m = entry && entry.measured;
  if (!m) return "";
  const after = format(m.after, ask.unit);
  if (ask.kind === "number") return `Predicted ${format(entry.value, ask.unit)}; measured ${after}.`;
  const moved = m.before === null || m.before === undefined ? after : `${format(m.before, ask.unit)} → ${after}`;
  return `${ask.label}: ${moved}.`;
}

// The states a step with a prediction goes through, with what each allows.
//   unanswered -> answered (answer) -> measuring (start) -> revealed (read)
// A run that ends while measuring goes back to answered; a revealed step can be
// played again (and measured again), but its prediction stays as it was.
export class PredictionState {
  constructor(ask, entry = null) {
    this.ask = ask;
    this.entry = entry;
    this.phase = !entry ? "unanswered" : entry.measured ? "revealed" : "answered";
    this.readAt = null;
    this.before = null;
  }

  get playable() {
    return this.phase === "answered" || this.phase === "revealed";
  }

  // Why the step cannot be played, or "" when it can.
  get why() {
    if (this.phase === "unanswered") return "Make your prediction first: the step plays once it is answered.";
    if (this.phase === "measuring") return "The step is running: its figure is read soon.";
    return "";
  }

  get canAnswer() {
    return this.phase === "unanswered" || this.phase === "answered";
  }

  answer(entry) {
    if (!this.canAnswer) throw new Error("this step has run: its prediction can no longer change");
    this.entry = { ...entry };
    this.phase = "answered";
  }

  // The step was pressed; its actions' clock starts at simulated time `t0`.
  // `before` is the figure at the press, or null when the step started a new run.
  start(t0, before) {
    if (!this.playable) throw new Error(this.why);
    this.phase = "measuring";
    this.readAt = t0 + (this.ask.reveal_after || 0);
    this.before = typeof before === "number" && Number.isFinite(before) ? before : null;
  }

  // A frame arrived: return the measurement once the figure is due, else null.
  frame(t, metrics) {
    if (this.phase !== "measuring" || t < this.readAt) return null;
    const after = metrics ? metrics[this.ask.measure] : undefined;
    if (typeof after !== "number" || !Number.isFinite(after)) return null;
    const measured = { after, before: this.before, t };
    this.entry = { ...this.entry, measured };
    this.phase = "revealed";
    return measured;
  }

  // The run ended before the figure was read.
  interrupted() {
    if (this.phase === "measuring") this.phase = this.entry && this.entry.measured ? "revealed" : "answered";
  }
}
