// Guided steps on the lesson page: a step's prediction is answered before it can
// be played; playing it sends its actions to the run (steps.js) and, for a step
// with a prediction, keeps it running until its figure is read from the run, then
// opens "What happened, and why" with the prediction beside the figure measured.

import { csrf, el } from "./dom.js";
import { describeMeasured, describePrediction, PredictionState, readAnswer, shortReveal } from "./predictions.js";
import { postJson } from "./runs.js";
import { playStep } from "./steps.js";

async function record(url, body) {
  const { response, data } = await postJson(url, body, { token: csrf() });
  if (!response.ok) {
    throw new Error(Object.values(data.errors || { error: `could not be saved (HTTP ${response.status})` })[0]);
  }
  return data;
}

// Play a step's actions; a run that could not start (the panel says why) fails it.
async function playOrFail(panel, actions) {
  const started = await panel.play(actions);
  if (!started) throw new Error("no run could be started");
  return started;
}

// Tell the page (a class, if it is in one) what the student did at a step.
function announce(target, name, detail) {
  target.dispatchEvent(new CustomEvent(name, { bubbles: true, detail }));
}

function json(text) {
  return text ? JSON.parse(text) : null;
}

// One step that asks for a prediction: its form, its play button's gate and its reveal.
class StepPrediction {
  constructor(item, button, { lesson, index, keep, busy }) {
    this.busy = busy; // whether some step is being played
    this.item = item;
    this.button = button;
    this.index = index;
    this.lesson = lesson;
    this.keep = keep; // false in an author's preview: nothing is recorded
    this.ask = json(item.dataset.prediction);
    this.state = new PredictionState(this.ask, json(item.dataset.predicted));
    this.form = item.querySelector("form.prediction");
    this.note = this.form.querySelector(".prediction-state");
    this.reveal = item.querySelector(".reveal");
    this.figures = this.reveal.querySelector(".reveal-figures");
    this.gateNote = el("p", { class: "step-gate", id: `${item.id}-gate` });
    button.before(this.gateNote);
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.render();
  }

  url(what) {
    return `/lessons/${this.lesson}/steps/${this.index}/${what}/`;
  }

  raw() {
    if (this.ask.kind === "choice") {
      const picked = this.form.querySelector("input[type=radio]:checked");
      return picked ? picked.value : null;
    }
    return this.form.querySelector("input[type=number]").value;
  }

  async submit() {
    const { body, error } = readAnswer(this.ask, this.raw());
    const input = this.form.querySelector("input[type=number]");
    if (error) {
      this.note.className = "prediction-state wrong";
      this.note.textContent = error;
      if (input) input.setAttribute("aria-invalid", "true");
      return;
    }
    if (input) input.removeAttribute("aria-invalid");
    try {
      const entry = this.keep ? (await record(this.url("prediction"), body)).prediction : body;
      this.state.answer(entry);
      announce(this.item, "scalelab:predicted", { index: this.index, entry });
    } catch (err) {
      this.note.className = "prediction-state wrong";
      this.note.textContent = `Your prediction was not saved: ${err.message}`;
      return;
    }
    this.render();
    this.note.textContent = `${describePrediction(this.ask, this.state.entry)} Now play the step.`;
  }

  render() {
    const s = this.state;
    const inputs = this.form.querySelectorAll("input, button");
    for (const input of inputs) input.disabled = !s.canAnswer;
    if (s.entry) {
      if (this.ask.kind === "choice") {
        const radio = this.form.querySelector(`input[type=radio][value="${s.entry.choice}"]`);
        if (radio) radio.checked = true;
      } else {
        this.form.querySelector("input[type=number]").value = String(s.entry.value);
      }
    }
    this.form.dataset.phase = s.phase;
    this.note.className = "prediction-state";
    if (s.phase !== "unanswered") this.note.textContent = describePrediction(this.ask, s.entry);
    this.gateNote.textContent = s.phase === "unanswered" ? s.why : "";
    this.gateNote.hidden = s.phase !== "unanswered";
    if (s.phase === "unanswered") {
      this.button.setAttribute("aria-describedby", this.gateNote.id);
    } else {
      this.button.removeAttribute("aria-describedby");
    }
    // The playing step's own state (steps.js) governs the button while it runs.
    if (s.phase !== "measuring" && !this.busy()) this.button.disabled = !s.playable;
    if (s.phase === "revealed") {
      this.figures.textContent = [describePrediction(this.ask, s.entry), describeMeasured(this.ask, s.entry.measured)].join(" ");
      this.reveal.dataset.short = shortReveal(this.ask, s.entry);
      this.reveal.hidden = false;
    }
  }

  // Play the step with `panel`, then wait until its figure is read.
  async play(panel, actions, stateLine) {
    const before = panel.isLive() && panel.latest ? panel.latest.metrics[this.ask.measure] : null;
    const started = await playOrFail(panel, actions);
    this.state.start(started.t0, started.fresh ? null : before);
    this.render();
    stateLine.textContent = `Running… the figure is read at ${this.state.readAt.toFixed(1)} simulated seconds.`;
    const measured = await new Promise((resolve) => {
      const check = () => {
        if (!panel.isLive()) return finish(null);
        const frame = panel.latest;
        const reading = frame && this.state.frame(frame.t, frame.metrics);
        if (reading) finish(reading);
      };
      const finish = (value) => {
        panel.root.removeEventListener("scalelab:frame", check);
        panel.root.removeEventListener("scalelab:status", check);
        resolve(value);
      };
      panel.root.addEventListener("scalelab:frame", check);
      panel.root.addEventListener("scalelab:status", check);
      check();
    });
    if (!measured) {
      this.state.interrupted();
      this.render();
      throw new Error("the run ended before the step's figure was read: play the step again");
    }
    this.render();
    announce(this.item, "scalelab:measured", { index: this.index, measured });
    if (this.keep) {
      try {
        await record(this.url("measured"), measured);
      } catch (err) {
        this.note.textContent = `${describePrediction(this.ask, this.state.entry)} (The measurement was not saved: ${err.message}.)`;
      }
    }
  }
}

export function mountSteps(panel) {
  const section = document.querySelector("section.steps");
  const buttons = [...document.querySelectorAll("[data-step-actions]")];
  const lesson = panel.lesson;
  const keep = Boolean(lesson) && !(section && section.dataset.preview === "true");
  const predictions = new Map();
  let playing = false;
  const busy = () => playing;
  for (const button of buttons) {
    const item = button.closest("li.step");
    if (item && item.dataset.prediction) {
      const index = Number(item.dataset.index);
      predictions.set(button, new StepPrediction(item, button, { lesson, index, keep, busy }));
    }
  }
  for (const button of buttons) {
    const stateLine = el("span", { class: "step-state", role: "status" });
    button.after(stateLine);
    const ask = predictions.get(button);
    button.addEventListener("click", () => {
      if (playing || (ask && !ask.state.playable)) return;
      playing = true;
      const item = button.closest("li.step");
      if (item) announce(item, "scalelab:step-played", { index: Number(item.dataset.index) });
      const actions = JSON.parse(button.dataset.stepActions);
      const play = ask ? () => ask.play(panel, actions, stateLine) : () => playOrFail(panel, actions);
      playStep(button, stateLine, buttons, play, (listener) => {
        const on = (e) => listener(e.detail);
        panel.root.addEventListener("scalelab:refused", on);
        return () => panel.root.removeEventListener("scalelab:refused", on);
      }).finally(() => {
        playing = false;
        // A step still waiting for its prediction stays closed to play.
        for (const p of predictions.values()) p.render();
      });
    });
  }
}
