// The simulation panel: controls generated from the engine's declaration, the
// run client, live charts, big figures, a table of the latest values and an
// event log in words, which screen readers hear a few seconds at a time (narration.js).

import { RunClient } from "./client.js";
import { csrf, el, pageData } from "./dom.js";
import { Announcer, LogFolder, sentence } from "./narration.js";
import { createRun } from "./runs.js";
import { actionMessages, planStep, playStep } from "./steps.js";
import { format, scaleFor } from "./values.js";

const SPEEDS = [0.25, 0.5, 1, 2, 4, 8];
const ANNOUNCE_EVERY_MS = 4000;
const TABLE_EVERY_MS = 1000;
const LOG_LIMIT = 60;

export class Panel {
  constructor(root) {
    this.root = root;
    this.engine = pageData(root.dataset.engineId);
    this.preset = root.dataset.presetId ? pageData(root.dataset.presetId) : {};
    this.lesson = root.dataset.lesson || "";
    this.values = {};
    for (const p of this.engine.params) this.values[p.name] = p.name in this.preset ? this.preset[p.name] : p.default;
    this.metricSpecs = Object.fromEntries(this.engine.metrics.map((m) => [m.name, m]));
    this.quiet = new Set(this.engine.quiet_events || []);
    this.client = null;
    this.runId = null;
    this.status = "idle";
    this.canControl = true;
    this.latest = null;
    this.lastTable = 0;
    this.build();
  }

  async build() {
    const r = this.root;
    const id = (s) => `${r.id}-${s}`;
    this.statusText = el("p", { class: "sim-status", role: "status", id: id("status"), text: "Not started. Press Run." });
    this.runButton = el("button", { type: "button", class: "btn btn-primary", "aria-keyshortcuts": "Space",
      onclick: () => this.toggle() }, "Run");
    this.speedSelect = el("select", { id: id("speed"), onchange: () => this.setSpeed() },
      ...SPEEDS.map((s) => el("option", { value: s, selected: s === 1 }, `${s}×`)));
    this.stepButton = el("button", { type: "button", class: "btn", disabled: true,
      title: "While paused: advance one frame (a tenth of a simulated second at this speed)",
      onclick: () => this.send({ type: "step" }) }, "Step");
    this.resetButton = el("button", { type: "button", class: "btn", disabled: true, onclick: () => this.send({ type: "reset" }) }, "Reset");
    this.stopButton = el("button", { type: "button", class: "btn", disabled: true, onclick: () => this.stop() }, "Stop");
    const toolbar = el("div", { class: "sim-toolbar", role: "toolbar", "aria-label": "Run controls" },
      this.runButton, this.stepButton,
      el("label", { class: "inline", for: id("speed") }, "Speed ", this.speedSelect),
      this.resetButton, this.stopButton);
    // The run's seed, and a way to see the very same run again.
    this.seedText = el("span", { class: "sim-seed", hidden: true });
    this.againButton = el("button", { type: "button", class: "btn", hidden: true,
      onclick: () => this.start(this.seed) }, "Run again with this seed");
    const seedLine = el("p", { class: "sim-seed-line" }, this.seedText, " ", this.againButton);

    this.figures = el("div", { class: "sim-figures" });
    this.commandBox = el("div", { class: "sim-commands", role: "group", "aria-label": "Inject events" });
    this.engine.commands.forEach((c, i) => this.commandBox.append(this.commandControl(c, i, id)));
    this.charts = el("div", { class: "sim-charts" });
    this.summary = el("p", { class: "sim-summary", id: id("summary") });
    this.table = el("table", { class: "sim-table" },
      el("caption", { text: "Latest values" }),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Figure" }), el("th", { scope: "col", text: "Value" }))),
      el("tbody"));
    this.paramForm = el("form", { class: "sim-params", onsubmit: (e) => e.preventDefault() });
    for (const p of this.engine.params) this.paramForm.append(this.paramControl(p, id));
    this.log = el("ol", { class: "sim-log", "aria-label": "Event log", tabindex: 0 });
    this.announcer = el("p", { class: "visually-hidden", "aria-live": "polite", "aria-atomic": "true" });
    this.narration = this.engine.narration || {};
    this.spoken = new Announcer((text) => { this.announcer.textContent = text; }, { windowMs: ANNOUNCE_EVERY_MS });
    this.logFolder = new LogFolder();
    this.errorBox = el("p", { class: "sim-error", role: "alert", hidden: true });

    r.append(
      toolbar, this.statusText, seedLine, this.errorBox, this.figures,
      el("h3", { class: "sim-h", text: "Break things" }), this.commandBox,
      this.charts, this.summary,
      el("details", { class: "sim-box", open: true }, el("summary", { text: "Parameters" }), this.paramForm),
      el("details", { class: "sim-box" }, el("summary", { text: "Table of latest values" }), this.table),
      el("details", { class: "sim-box", open: true }, el("summary", { text: "Event log" }), this.log),
      this.announcer,
    );
    this.buildFigures();
    this.setBusy(false);
    // The page names the engine's chart module (hashed, like every static file).
    const module = await import(this.root.dataset.chartModule);
    this.chartModule = module;
    this.chartView = module.default(this.charts, { windowSeconds: 60, engine: this.engine });
    if (module.figures) this.buildFigures(module.figures);
    this.root.dataset.ready = "true";
    // A reloaded (or reopened) page carries on with the visitor's live run of it.
    if (r.dataset.liveRun) {
      this.statusText.textContent = "Reconnecting to your run…";
      this.attach(r.dataset.liveRun);
    }
  }

  buildFigures(names) {
    const specs = this.engine.metrics;
    let chosen = names || specs.filter((m) => m.name.endsWith("_recent")).map((m) => m.name);
    if (!chosen.length) chosen = specs.filter((m) => m.summary).slice(0, 4).map((m) => m.name);
    this.figures.replaceChildren();
    this.figureNodes = {};
    for (const name of chosen.slice(0, 4)) {
      const spec = this.metricSpecs[name];
      if (!spec) continue;
      const value = el("span", { class: "figure-value", "data-metric": name, text: "–" });
      this.figureNodes[name] = value;
      this.figures.append(el("div", { class: "figure" }, value, el("span", { class: "figure-label", text: spec.unit ? `${spec.label} (${spec.unit})` : spec.label })));
    }
  }

  paramControl(p, id) {
    const inputId = id(`p-${p.name}`);
    const helpId = `${inputId}-help`;
    const help = el("small", { id: helpId, class: "help", text: `${p.help} Allowed: ${p.allowed}.` });
    const label = el("label", { for: inputId }, p.label, p.unit ? el("span", { class: "unit", text: ` (${p.unit})` }) : null);
    const row = el("div", { class: "param", "data-param": p.name });
    let input;
    if (p.type === "choice") {
      input = el("select", { id: inputId, name: p.name, "aria-describedby": helpId },
        ...p.choices.map((c) => el("option", { value: c, selected: c === this.values[p.name] }, c.replaceAll("_", " "))));
      input.addEventListener("change", () => this.changeParam(p, input.value));
      row.append(label, input);
    } else if (p.type === "bool") {
      input = el("input", { type: "checkbox", id: inputId, name: p.name, "aria-describedby": helpId, checked: this.values[p.name] });
      input.addEventListener("change", () => this.changeParam(p, input.checked));
      row.append(input, label);
    } else {
      const scale = scaleFor(p);
      const slider = el("input", { type: "range", min: 0, max: 1000, step: 1, value: scale.toSlider(this.values[p.name]),
        "aria-label": `${p.label} slider`, "aria-describedby": helpId, tabindex: -1 });
      input = el("input", { type: "number", id: inputId, name: p.name, min: p.min, max: p.max,
        step: p.type === "int" ? 1 : "any", value: this.values[p.name], "aria-describedby": helpId, inputmode: "decimal" });
      slider.addEventListener("input", () => { input.value = scale.fromSlider(Number(slider.value)); });
      slider.addEventListener("change", () => this.changeParam(p, scale.fromSlider(Number(slider.value))));
      input.addEventListener("change", () => {
        const v = Number(input.value);
        if (input.value === "" || Number.isNaN(v) || v < p.min || v > p.max || (p.type === "int" && !Number.isInteger(v))) {
          this.showError(`${p.label}: must be ${p.allowed}.`);
          input.setAttribute("aria-invalid", "true");
          return;
        }
        input.removeAttribute("aria-invalid");
        slider.value = scale.toSlider(v);
        this.changeParam(p, v);
      });
      row.append(label, el("div", { class: "param-inputs" }, slider, input));
      row.slider = slider;
      row.scale = scale;
    }
    row.append(help);
    row.input = input;
    return row;
  }

  commandControl(c, index, id) {
    const wrap = el("div", { class: "command", "data-command": c.name });
    const args = {};
    for (const a of c.args) {
      const argId = id(`c-${c.name}-${a.name}`);
      let input;
      if (a.type === "choice") {
        input = el("select", { id: argId }, ...a.choices.map((x) => el("option", { value: x, selected: x === a.default }, x)));
      } else {
        input = el("input", { id: argId, type: "number", min: a.min, max: a.max, step: a.type === "int" ? 1 : "any", value: a.default, class: "arg" });
      }
      args[a.name] = { input, spec: a };
      wrap.append(el("label", { for: argId, class: "arg-label" }, a.label), input);
    }
    const key = index < 9 ? String(index + 1) : null;
    const button = el("button", { type: "button", class: "btn btn-command", title: c.help, "aria-keyshortcuts": key,
      "data-command": c.name, onclick: () => this.command(c, args) }, c.label, key ? el("kbd", { class: "key", "aria-hidden": "true", text: key }) : null);
    wrap.prepend(button);
    wrap.button = button;
    return wrap;
  }

  // Actions -------------------------------------------------------------

  async toggle() {
    if (this.status === "running") return this.send({ type: "pause" });
    if (this.status === "paused") return this.send({ type: "resume" });
    return this.start();
  }

  async start(seed = null) {
    this.setBusy(true);
    this.hideError();
    this.statusText.textContent = "Starting…";
    try {
      const body = await createRun(
        { kind: this.engine.kind, params: this.values, lesson: this.lesson, seed },
        { token: csrf() },
      );
      // The speed chosen before Run is sent once the run says hello.
      this.pendingSpeed = true;
      this.attach(body.id);
    } catch (err) {
      this.showError(err.field ? `${err.field}: ${err.message}` : `Could not reach the server: ${err.message}`);
      this.statusText.textContent = "Not started.";
      this.setBusy(false);
    }
  }

  attach(runId) {
    if (this.client) this.client.close();
    this.runId = runId;
    this.latest = null;
    this.root.dataset.runId = runId;
    this.chartView && this.chartView.reset();
    this.client = new RunClient(runId);
    this.client.addEventListener("hello", (e) => this.onHello(e.detail));
    this.client.addEventListener("frame", (e) => this.onFrame(e.detail));
    this.client.addEventListener("snapshot", (e) => { this.chartView.reset(); this.onFrame(e.detail); });
    this.client.addEventListener("status", (e) => this.onStatus(e.detail));
    this.client.addEventListener("error", (e) => this.showError(e.detail.message));
    this.client.addEventListener("connection", (e) => {
      if (e.detail.state === "reconnecting") this.statusText.textContent = "Connection lost; reconnecting…";
    });
  }

  async send(msg) {
    if (!this.client) return;
    try {
      await this.client.control(msg);
      this.hideError();
    } catch (err) {
      const message = err.field ? `${err.field}: ${err.message}` : err.message;
      this.showError(message);
      this.root.dispatchEvent(new CustomEvent("scalelab:refused", { detail: message }));
    }
  }

  setSpeed() {
    if (this.client && this.isLive()) this.send({ type: "speed", value: Number(this.speedSelect.value) });
  }

  async stop() {
    await this.send({ type: "stop" });
  }

  async command(c, args) {
    const values = {};
    for (const [name, { input, spec }] of Object.entries(args)) {
      values[name] = spec.type === "choice" ? input.value : Number(input.value);
    }
    if (!this.isLive()) {
      this.showError("Press Run first: commands act on a running simulation.");
      return;
    }
    await this.send({ type: "command", name: c.name, args: values });
  }

  changeParam(p, value) {
    this.values[p.name] = value;
    if (this.isLive()) this.send({ type: "set", name: p.name, value });
  }

  // Plays a guided step's actions: parameter changes and commands, each at its
  // "after" (simulated seconds from the moment the step is played).
  async play(actions) {
    const fixed = new Set(this.engine.params.filter((p) => p.live === false).map((p) => p.name));
    const plan = planStep(actions, { fixed, live: this.isLive(), canControl: this.canControl });
    if (plan.stopFirst) {
      // A setting that shapes the whole world: end this run, start a new one with it.
      const ended = new Promise((resolve) => this.client.addEventListener("status", (e) => {
        if (e.detail.status === "stopped" || e.detail.status === "failed") resolve();
      }));
      await this.stop();
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    }
    if (plan.startsRun && !this.isLive()) {
      Object.assign(this.values, plan.initial);
      this.syncInputs();
      await this.start();
      if (!this.client) return;
      await new Promise((resolve) => this.client.addEventListener("hello", resolve, { once: true }));
    }
    const t0 = this.latest ? this.latest.t : 0;
    for (const a of plan.timed) {
      if (a.after) await this.untilSimTime(t0 + a.after);
      if (!this.isLive()) return;
      for (const message of actionMessages(a)) {
        if (message.type === "set") this.values[message.name] = message.value;
        await this.send(message);
      }
    }
    this.syncInputs();
  }

  untilSimTime(t) {
    return new Promise((resolve) => {
      const check = () => {
        if (!this.isLive() || (this.latest && this.latest.t >= t)) {
          this.root.removeEventListener("scalelab:frame", check);
          resolve();
        }
      };
      this.root.addEventListener("scalelab:frame", check);
      check();
    });
  }

  syncInputs() {
    for (const row of this.paramForm.querySelectorAll(".param")) {
      const name = row.dataset.param;
      const v = this.values[name];
      if (row.input.type === "checkbox") row.input.checked = v;
      else row.input.value = v;
      if (row.slider) row.slider.value = row.scale.toSlider(v);
    }
  }

  isLive() {
    return this.status === "running" || this.status === "paused";
  }

  // From the server -------------------------------------------------------

  onHello(msg) {
    this.canControl = msg.can_control;
    Object.assign(this.values, msg.run.params);
    this.syncInputs();
    const wanted = Number(this.speedSelect.value);
    if (this.pendingSpeed && this.canControl && wanted !== msg.run.speed) {
      this.send({ type: "speed", value: wanted });
    } else {
      this.speedSelect.value = String(msg.run.speed);
    }
    this.pendingSpeed = false;
    this.seed = msg.run.seed;
    this.seedText.textContent = `Seed ${msg.run.seed}`;
    this.seedText.hidden = false;
    this.status = msg.run.status;
    this.reason = msg.run.stop_reason || null;
    this.render();
  }

  onStatus(msg) {
    if (msg.reset) {
      this.chartView.reset();
      this.logEvent({ type: "run.reset", t: msg.t });
    }
    if (msg.error) {
      this.showError(`${msg.error.field}: ${msg.error.message}`);
      this.root.dataset.lastError = msg.error.field;
      this.root.dispatchEvent(new CustomEvent("scalelab:refused", { detail: `${msg.error.field}: ${msg.error.message}` }));
    }
    if (msg.command) this.root.dataset.lastCommand = `${msg.command}@${msg.seq}.${msg.sub}`;
    if (msg.params) {
      Object.assign(this.values, msg.params);
      this.syncInputs();
    }
    for (const e of msg.events || []) this.logEvent(e);
    if (typeof msg.speed === "number") this.speedSelect.value = String(msg.speed);
    this.status = msg.status;
    this.reason = msg.reason || null;
    if (msg.reason) this.logEvent({ type: `run.${msg.status}`, t: msg.t, reason: msg.reason });
    this.render();
  }

  onFrame(frame) {
    this.latest = frame;
    if (this.status === "idle") this.status = "running";
    this.chartView && this.chartView.push(frame);
    for (const [name, node] of Object.entries(this.figureNodes)) {
      node.textContent = format(frame.metrics[name]);
    }
    for (const e of frame.events) {
      if (this.quiet.has(e.type)) continue;
      if (!("count" in e) || e.type === "events.truncated") this.logEvent(e);
    }
    const now = performance.now();
    if (now - this.lastTable > TABLE_EVERY_MS) {
      this.lastTable = now;
      this.renderTable(frame);
    }
    this.root.dataset.seq = frame.seq;
    this.root.dispatchEvent(new CustomEvent("scalelab:frame"));
  }

  renderTable(frame) {
    const rows = this.engine.metrics.filter((m) => m.name in frame.metrics).map((m) =>
      el("tr", {}, el("th", { scope: "row", text: m.label }), el("td", { "data-metric": m.name, text: format(frame.metrics[m.name], m.unit) })));
    this.table.tBodies[0].replaceChildren(...rows);
    const shown = Object.keys(this.figureNodes).map((n) => `${this.metricSpecs[n].label} ${format(frame.metrics[n], this.metricSpecs[n].unit)}`);
    this.summary.textContent = `At ${frame.t.toFixed(1)} simulated seconds: ${shown.join("; ")}.`;
  }

  logEvent(e) {
    const words = sentence(e, this.narration);
    const { text, fold } = this.logFolder.add(e, words);
    const line = `${e.t !== undefined ? `${Number(e.t).toFixed(1)} s  ` : ""}${text}`;
    if (fold && this.log.firstChild) this.log.firstChild.textContent = line;
    else this.log.prepend(el("li", { text: line, "data-event": e.type }));
    while (this.log.children.length > LOG_LIMIT) this.log.lastChild.remove();
    this.spoken.add(e.type, words);
  }

  render() {
    const live = this.isLive();
    this.runButton.textContent = this.status === "running" ? "Pause" : this.status === "paused" ? "Resume" : "Run";
    this.runButton.setAttribute("aria-pressed", this.status === "running" ? "true" : "false");
    const words = { running: "Running", paused: "Paused", stopped: "Stopped", failed: "Failed", idle: "Not started" };
    const why = !live && this.reason ? `: ${this.reason}` : "";
    this.statusText.textContent = `${words[this.status] || this.status}${why}${this.canControl ? "" : " (watching: only the run's owner controls it)"}.`;
    this.resetButton.disabled = !live || !this.canControl;
    this.stopButton.disabled = !live || !this.canControl;
    this.stepButton.disabled = this.status !== "paused" || !this.canControl;
    this.againButton.hidden = live || this.seed === undefined || this.status === "idle";
    this.root.dataset.status = this.status;
    this.setBusy(false);
    if (!live && this.client && (this.status === "stopped" || this.status === "failed")) {
      this.client.close();
      this.client = null;
      this.runButton.textContent = "Run again";
    }
  }

  setBusy(busy) {
    this.runButton.disabled = busy || (!this.canControl && this.isLive());
    this.root.setAttribute("aria-busy", busy ? "true" : "false");
  }

  showError(message) {
    this.errorBox.hidden = false;
    this.errorBox.textContent = message;
  }

  hideError() {
    this.errorBox.hidden = true;
    this.errorBox.textContent = "";
  }
}

// Keyboard: Space runs and pauses, number keys send the engine's commands.
function typing(target) {
  return target.closest("input, select, textarea, button, summary, a, [contenteditable]");
}

export function mountAll() {
  const panels = [...document.querySelectorAll(".sim[data-engine-id]")].map((root) => new Panel(root));
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    const panel = panels[0];
    if (!panel) return;
    if (e.key === " ") {
      e.preventDefault();
      panel.toggle();
    } else if (/^[1-9]$/.test(e.key)) {
      const buttons = panel.commandBox.querySelectorAll(".btn-command");
      const b = buttons[Number(e.key) - 1];
      if (b) {
        e.preventDefault();
        b.click();
      }
    }
  });
  const steps = [...document.querySelectorAll("[data-step-actions]")];
  for (const step of steps) {
    const state = el("span", { class: "step-state", role: "status" });
    step.after(state);
    step.addEventListener("click", () => {
      const panel = panels[0];
      if (!panel) return;
      playStep(step, state, steps, () => panel.play(JSON.parse(step.dataset.stepActions)), (listener) => {
        const on = (e) => listener(e.detail);
        panel.root.addEventListener("scalelab:refused", on);
        return () => panel.root.removeEventListener("scalelab:refused", on);
      });
    });
  }
  window.scalelabPanels = panels;
  return panels;
}

mountAll();
