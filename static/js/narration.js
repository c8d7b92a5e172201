// Events told in words: the sentence for an event, from the templates its
// engine declares (``narration`` in the engine's description), and an
// announcer that gathers what happens within a few seconds and says it at
// once, so a screen reader hears every notable event without being flooded.
//
// A template holds placeholders filled from the event's fields:
//   {field}                the value, numbers written for people, lists joined
//   {field?yes|no}         words chosen by whether the field is true (or absent)
//   {field#noun}           a count with its noun: "1 request", "3 requests"
//   {field#noun|nouns}     the same with an irregular plural
//   {field%}               a fraction as a percentage: 0.22 -> "22%"

import { readable } from "./values.js";

export const PLACEHOLDER = /\{(\w+)(?:\?([^{}|]*)\|([^{}]*)|#([^{}|]+)(?:\|([^{}|]+))?|(%))?\}/g;

// Sentences for what the run itself reports, the same in every engine.
export const RUN_NARRATION = {
  "run.reset": "The world was reset",
  "run.stopped": "The run ended: {reason}",
  "run.failed": "The run failed: {reason}",
  "run.paused": "The run paused: {reason}",
  "events.truncated": "{count#more event} in this frame were left out",
};

function plainNumber(value) {
  if (Number.isInteger(value)) return value.toLocaleString("en");
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en");
  if (abs >= 10) return value.toFixed(1);
  return String(Number(value.toPrecision(3)));
}


function joined(items) {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

function shown(value, format) {
  if (Array.isArray(value)) return joined(value.map((v) => shown(v, format)));
  if (typeof value === "number") return format(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (value === null || value === undefined) return "none";
  return readable(String(value));
}

// A type with no template still reads as words: "balancer.mark_down" ->
// "Balancer mark down". Its fields are left out: a dump of them is no sentence.
export function readableType(type) {
  const text = String(type).replaceAll(".", " ").replaceAll("_", " ").trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// Return the words for ``event``: its type's template filled in, or its type
// made readable. ``format`` writes a number (values.js's ``format`` on the page).
export function sentence(event, templates = {}, format = plainNumber) {
  const template = templates[event.type] ?? RUN_NARRATION[event.type];
  if (template === undefined) return readableType(event.type);
  // The template's own first word takes a capital; a name it starts with does not.
  const capital = template.charAt(0).toUpperCase() + template.slice(1);
  return capital.replace(PLACEHOLDER, (_, field, yes, no, noun, nouns, percent) => {
    const value = event[field];
    if (yes !== undefined) return value ? yes : no;
    if (noun !== undefined) {
      const n = Number(value);
      return `${format(n)} ${n === 1 ? noun : (nouns ?? `${noun}s`)}`;
    }
    if (percent !== undefined) return `${Math.round(Number(value) * 100)}%`;
    return shown(value, format);
  });
}

// Return the words for a group of events said together: each one's sentence,
// or, for many of one type, the first and how many more like it.
export function summary(items, { listUpTo = 2 } = {}) {
  const groups = new Map();
  for (const { type, text } of items) {
    if (!groups.has(type)) groups.set(type, []);
    groups.get(type).push(text);
  }
  const parts = [];
  for (const texts of groups.values()) {
    if (texts.length <= listUpTo) parts.push(...texts.map((t) => `${t}.`));
    else parts.push(`${texts[0]}, and ${texts.length - 1} more like it.`);
  }
  return parts.join(" ");
}

// Gathers the events of a window and speaks them together at its end: the
// first event opens a window of ``windowMs``, so there is at most one
// announcement per window and every event is in one of them.
export class Announcer {
  constructor(speak, { windowMs = 3000, schedule = (fn, ms) => setTimeout(fn, ms), cancel = (id) => clearTimeout(id) } = {}) {
    this.speak = speak;
    this.windowMs = windowMs;
    this.schedule = schedule;
    this.cancel = cancel;
    this.pending = [];
    this.timer = null;
  }

  add(type, text) {
    this.pending.push({ type, text });
    if (this.timer === null) this.timer = this.schedule(() => this.flush(), this.windowMs);
  }

  // Say what is gathered now (the window's end), if anything.
  flush() {
    if (this.timer !== null) this.cancel(this.timer);
    this.timer = null;
    if (!this.pending.length) return;
    const items = this.pending;
    this.pending = [];
    this.speak(summary(items));
  }
}

// Folds a run of events of one type within ``windowS`` simulated seconds into
// one log line ("..., and 4 more like it"), so that a stream of slow queries
// does not push everything else out of the log.
export class LogFolder {
  constructor({ windowS = 5 } = {}) {
    this.windowS = windowS;
    this.last = null;
  }

  // Return the line's text and whether it replaces the previous line.
  add(event, text) {
    const t = typeof event.t === "number" ? event.t : null;
    const last = this.last;
    if (last && last.type === event.type && t !== null && last.t !== null && t >= last.t && t - last.t <= this.windowS) {
      last.more += 1;
      return { text: `${last.text}, and ${last.more} more like it`, fold: true };
    }
    this.last = { type: event.type, t, text, more: 0 };
    return { text, fold: false };
  }
}
