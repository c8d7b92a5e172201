// The simulation panel: controls generated from the engine's declaration, the
// run client, live charts, big figures, a table of the latest values and an
// event log in words, which screen readers hear a few seconds at a time (narration.js).

import { RunClient } from "./client.js";
import { argValue, commandControl, paramControl, syncInputs } from "./controls.js";
import { csrf, el, pageData } from "./dom.js";
import { Announcer, LogFolder, sentence } from "./narration.js";
import { createRun, momentFromUrl } from "./runs.js";
import { mountSteps } from "./guided.js";
import { actionMessages, planStep } from "./steps.js";
import { shown } from "./values.js";

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
    // A link to the moment on screen: opened, it replays this run to that frame as
    // the visitor's own new run, which goes on live from there.
    this.linkButton = el("button", { type: "button", class: "btn", hidden: true,
      onclick: () => this.linkMoment() }, "Link to this moment");
    this.linkInput = el("input", { type: "text", readonly: true, class: "sim-link-url", id: id("link"),
      "aria-label": "Link to this moment", onfocus: (e) => e.target.select() });
    this.linkNote = el("span", { class: "sim-link-note", role: "status" });
    this.linkBox = el("p", { class: "sim-link", hidden: true }, this.linkInput, " ", this.linkNote);
    const seedLine = el("p", { class: "sim-seed-line" }, this.seedText, " ", this.againButton);
    // Below the charts: on a phone the first chart keeps its place beside the step.
    const shareLine = el("div", { class: "sim-share" }, el("p", {}, this.linkButton), this.linkBox);

    this.figures = el("div", { class: "sim-figures" });
    this.commandBox = el("div", { class: "sim-commands", role: "group", "aria-label": "Inject events" });
    this.engine.commands.forEach((c, i) => this.commandBox.append(commandControl(c, i, id, (cmd, args) => this.command(cmd, args))));
    this.pictureBox = el("div", { class: "sim-picture" });
    this.charts = el("div", { class: "sim-charts" });
    this.summary = el("p", { class: "sim-summary", id: id("summary") });
    this.table = el("table", { class: "sim-table" },
      el("caption", { text: "Latest values" }),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Figure" }), el("th", { scope: "col", text: "Value" }))),
      el("tbody"));
    this.paramForm = el("form", { class: "sim-params", onsubmit: (e) => e.preventDefault() });
    for (const p of this.engine.params) {
      this.paramForm.append(paramControl(p, {
        id, value: this.values[p.name], onChange: (v) => this.changeParam(p, v), onInvalid: (m) => this.showError(m),
      }));
    }
    this.log = el("ol", { class: "sim-log", "aria-label": "Event log", tabindex: 0 });
    this.announcer = el("p", { class: "visually-hidden", "aria-live": "polite", "aria-atomic": "true" });
    this.narration = this.engine.narration || {};
    this.spoken = new Announcer((text) => { this.announcer.textContent = text; }, { windowMs: ANNOUNCE_EVERY_MS });
    this.logFolder = new LogFolder();
    this.errorBox = el("p", { class: "sim-error", role: "alert", hidden: true });

    r.append(
      toolbar, this.statusText, seedLine, this.errorBox, this.figures, this.pictureBox,
      el("h3", { class: "sim-h", text: "Break things" }), this.commandBox,
      this.charts, this.summary, shareLine,
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
    await this.mountPicture();
    this.root.dataset.ready = "true";
    // A link to a moment of a run starts the visitor's own run from there; a
    // reloaded (or reopened) page carries on with the visitor's live run of it.
    const moment = momentFromUrl();
    if (moment) {
      this.start(null, moment);
    } else if (r.dataset.liveRun) {
      this.statusText.textContent = "Reconnecting to your run…";
      this.attach(r.dataset.liveRun);
    }
  }

  // The live picture of the system, drawn from the same frames as the charts.
  async mountPicture() {
    if (!this.root.dataset.pictureModule) return;
    const module = await import(this.root.dataset.pictureModule);
    this.pictureView = module.default(this.pictureBox, {
      root: this.root,
      engine: this.engine,
      command: (name, args = {}) => this.send({ type: "command", name, args }),
      canControl: () => this.canControl && this.isLive(),
      paused: () => this.status !== "running",
      speed: () => (this.latest && this.latest.speed) || Number(this.speedSelect.value) || 1,
      refuse: (message) => this.showError(message),
    });
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

  // Actions -------------------------------------------------------------

  async toggle() {
    if (this.status === "running") return this.send({ type: "pause" });
    if (this.status === "paused") return this.send({ type: "resume" });
    return this.start();
  }

  async start(seed = null, moment = null) {
    this.setBusy(true);
    this.hideError();
    this.statusText.textContent = moment
      ? `Replaying the linked run to ${moment.t ? `${moment.t} simulated seconds` : `frame ${moment.at}`}…`
      : "Starting…";
    try {
      const request = { kind: this.engine.kind, params: this.values, lesson: this.lesson, seed };
      if (moment) request.moment = { run: moment.run, at: moment.at };
      const body = await createRun(request, { token: csrf() });
      // The link has done its work: a reload carries on with this new run.
      if (moment) {
        const url = new URL(location.href);
        for (const name of ["run", "at", "t"]) url.searchParams.delete(name);
        history.replaceState(history.state, "", url.pathname + url.search + url.hash);
      }
      // The speed chosen before Run is sent once the run says hello.
      this.pendingSpeed = true;
      this.attach(body.id);
    } catch (err) {
      this.showError(err.field ? `${err.field}: ${err.message}` : `Could not reach the server: ${err.message}`);
      this.statusText.textContent = "Not started.";
      this.setBusy(false);
    }
  }

  linkMoment() {
    if (!this.runId || !this.latest) return;
    const url = new URL(location.pathname, location.origin);
    url.searchParams.set("run", this.runId);
    url.searchParams.set("at", String(this.latest.seq));
    url.searchParams.set("t", this.latest.t.toFixed(1));
    this.linkInput.value = url.href;
    this.linkBox.hidden = false;
    this.linkInput.focus();
    const note = `Link to ${this.latest.t.toFixed(1)} simulated seconds`;
    const copied = navigator.clipboard && window.isSecureContext
      ? navigator.clipboard.writeText(url.href).then(() => true, () => false)
      : Promise.resolve(false);
    copied.then((ok) => {
      this.linkNote.textContent = ok ? `${note}: copied.` : `${note}: select it and copy it.`;
    });
  }

  attach(runId) {
    if (this.client) this.client.close();
    this.runId = runId;
    this.latest = null;
    this.root.dataset.runId = runId;
    this.chartView && this.chartView.reset();
    this.pictureView && this.pictureView.reset();
    this.client = new RunClient(runId);
    this.client.addEventListener("hello", (e) => this.onHello(e.detail));
    this.client.addEventListener("frame", (e) => this.onFrame(e.detail));
    this.client.addEventListener("snapshot", (e) => {
      this.chartView.reset();
      this.pictureView && this.pictureView.reset();
      this.onFrame(e.detail);
    });
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
    for (const [name, { input, spec }] of Object.entries(args)) values[name] = argValue(input, spec);
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
  // "after" (simulated seconds from the moment the step is played). Resolves with
  // the simulated time the actions' clock started at, and whether the step started
  // a new run for them; null when no run could be started.
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
    const fresh = plan.startsRun && !this.isLive();
    if (fresh) {
      Object.assign(this.values, plan.initial);
      this.syncInputs();
      await this.start();
      if (!this.client) return null;
      await new Promise((resolve) => this.client.addEventListener("hello", resolve, { once: true }));
    }
    const t0 = this.latest ? this.latest.t : 0;
    for (const a of plan.timed) {
      if (a.after) await this.untilSimTime(t0 + a.after);
      if (!this.isLive()) break;
      for (const message of actionMessages(a)) {
        if (message.type === "set") this.values[message.name] = message.value;
        await this.send(message);
      }
    }
    this.syncInputs();
    return { t0, fresh };
  }

  untilSimTime(t) {
    return new Promise((resolve) => {
      const check = () => {
        if (!this.isLive() || (this.latest && this.latest.t >= t)) {
          this.root.removeEventListener("scalelab:frame", check);
          this.root.removeEventListener("scalelab:status", check);
          resolve();
        }
      };
      this.root.addEventListener("scalelab:frame", check);
      this.root.addEventListener("scalelab:status", check);
      check();
    });
  }

  syncInputs() {
    syncInputs(this.paramForm, this.values);
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
      this.pictureView && this.pictureView.reset();
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
    this.root.dispatchEvent(new CustomEvent("scalelab:status"));
  }

  onFrame(frame) {
    this.latest = frame;
    if (this.status === "idle") this.status = "running";
    this.chartView && this.chartView.push(frame);
    this.pictureView && this.pictureView.push(frame);
    for (const [name, node] of Object.entries(this.figureNodes)) {
      const spec = this.metricSpecs[name];
      const value = frame.metrics[name];
      const words = (spec.unset && value === -1) || typeof value === "string";
      node.textContent = shown(spec, value, ""); // the unit is in the figure's label
      // Words ("no re-route yet") may wrap in a narrow box; a number never breaks.
      node.classList.toggle("is-words", Boolean(words));
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
      el("tr", {}, el("th", { scope: "row", text: m.label }), el("td", { "data-metric": m.name, text: shown(m, frame.metrics[m.name]) })));
    this.table.tBodies[0].replaceChildren(...rows);
    const figures = Object.keys(this.figureNodes).map((n) => `${this.metricSpecs[n].label} ${shown(this.metricSpecs[n], frame.metrics[n])}`);
    this.summary.textContent = `At ${frame.t.toFixed(1)} simulated seconds: ${figures.join("; ")}.`;
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
    this.linkButton.hidden = !this.runId || this.status === "idle" || this.status === "failed";
    this.root.dataset.status = this.status;
    this.setBusy(false);
    this.root.dispatchEvent(new CustomEvent("scalelab:control"));
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

// A metric's value in words: -1 is a metric's "none" where it declares one.
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
  if (panels[0]) mountSteps(panels[0]);
  window.scalelabPanels = panels;
  return panels;
}

mountAll();
