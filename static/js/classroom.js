// A lesson page opened in a class (?class=CODE): the class socket, the teacher's
// console (step, pause all, polls, the shared run) or the student's bar (follow the
// teacher's step, answer polls, see the class's answers once revealed, look up when
// paused, experiment on one's own and come back). And, for instructors on a lesson
// page, "Start a class".

import { csrf, el, pageData } from "./dom.js";
import { postJson } from "./runs.js";
import { format } from "./values.js";

const RETRY_MS = 2000;

// The bars of a poll's answers: a choice's count, or a histogram's bins.
export function distribution(results) {
  if (results.kind === "choice") {
    return results.choices.map((label, i) => ({ label, count: results.counts[i] || 0 }));
  }
  const { edges = [], counts = [] } = results.histogram || {};
  return counts.map((count, i) => ({
    label: edges.length > 2 || counts.length > 1 ? `${format(edges[i])} to ${format(edges[i + 1])}` : format(edges[0]),
    count,
  }));
}

function bars(results) {
  const rows = distribution(results);
  const most = Math.max(1, ...rows.map((r) => r.count));
  return el("ul", { class: "class-bars", "aria-label": `The class's answers to step ${results.step + 1}` },
    ...rows.map((r) => el("li", { class: "class-bar" },
      el("span", { class: "class-bar-label", text: r.label }),
      el("span", { class: "class-bar-fill", style: `width: ${(r.count / most) * 100}%` }),
      el("span", { class: "class-bar-count", text: String(r.count) }))));
}

class Classroom {
  constructor(root) {
    this.root = root;
    this.code = root.dataset.code;
    this.role = root.dataset.role;
    this.steps = pageData("class-steps");
    this.statusText = root.querySelector("[data-class=status]");
    this.pollBox = root.querySelector("[data-class=poll]");
    this.controls = root.querySelector("[data-class=controls]");
    this.lookup = document.querySelector("[data-class=lookup]");
    this.state = null;
    this.forked = false;
    this.shared = null;
    this.ended = false;
    if (this.role === "teacher") this.buildConsole();
    else this.buildBar();
  }

  get panel() {
    return (window.scalelabPanels || [])[0];
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}/ws/classes/${this.code}/`);
    this.ws.addEventListener("message", (e) => this.onMessage(JSON.parse(e.data)));
    this.ws.addEventListener("close", (e) => {
      if (this.ended || e.code === 4403 || e.code === 4404) return;
      this.statusText.textContent = "Connection to the class lost; reconnecting…";
      setTimeout(() => this.connect(), RETRY_MS);
    });
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  onMessage(msg) {
    if (msg.type === "class.state") this.onState(msg);
    else if (msg.type === "poll.results") this.onResults(msg);
    else if (msg.type === "poll.count") this.onPollCount(msg);
    else if (msg.type === "error") this.statusText.textContent = `${msg.field}: ${msg.message}`;
  }

  stepTitle(index) {
    const step = this.steps.find((s) => s.index === index);
    return step ? `step ${index + 1}, ${step.title}` : "no step yet";
  }

  onState(state) {
    const before = this.state;
    this.state = state;
    this.root.dataset.step = state.step ?? "";
    this.root.dataset.paused = state.paused ? "true" : "false";
    this.root.dataset.poll = state.poll ? state.poll.state : "";
    if (state.ended) {
      this.ended = true;
      this.statusText.textContent = "The class has ended. The lesson stays here for you.";
      this.lookup.hidden = true;
      this.pollBox.hidden = true;
      this.controls.replaceChildren();
      return;
    }
    if (this.role === "teacher") this.renderConsole(state);
    else this.renderBar(state, before);
  }

  // Teacher ---------------------------------------------------------------

  buildConsole() {
    const members = this.root.querySelector("[data-class=members]");
    this.membersText = members;
    this.stepSelect = el("select", { id: "class-step", "aria-label": "Step to show the class" },
      ...this.steps.map((s) => el("option", { value: s.index }, `${s.index + 1}. ${s.title}`)));
    const button = (label, onclick, attrs = {}) => el("button", { type: "button", class: "btn", onclick, ...attrs }, label);
    this.pauseButton = button("Pause all", () => this.send({ type: this.state && this.state.paused ? "resume_all" : "pause_all" }));
    this.openButton = button("Open the poll", () => this.send({ type: "poll.open", step: this.currentStep() }));
    this.closeButton = button("Close the poll", () => this.send({ type: "poll.close", step: this.currentStep() }));
    this.revealButton = button("Reveal the answers", () => this.send({ type: "poll.reveal", step: this.currentStep() }));
    this.controls.append(
      el("p", { class: "class-row" },
        el("label", { for: "class-step" }, "Class step "), this.stepSelect, " ",
        button("Show it to the class", () => this.send({ type: "step", step: Number(this.stepSelect.value) }))),
      el("p", { class: "class-row" }, this.pauseButton, " ", this.openButton, " ", this.closeButton, " ", this.revealButton),
      el("p", { class: "class-row" },
        el("a", { class: "btn", href: `/api/classes/${this.code}/results.csv`, download: "" }, "Download the results (CSV)"), " ",
        button("End the class", () => { if (confirm("End the class? Its code stops working.")) this.send({ type: "end" }); })),
    );
    // The teacher's run is the class's: share it when it starts (or changes).
    const share = () => {
      const run = this.panel && this.panel.runId;
      if (run && run !== this.shared && this.panel.canControl) {
        this.shared = run;
        this.send({ type: "run", run });
      }
    };
    document.addEventListener("scalelab:frame", share, true);
    document.addEventListener("scalelab:status", share, true);
  }

  currentStep() {
    return this.state && this.state.step !== null ? this.state.step : Number(this.stepSelect.value);
  }

  renderConsole(state) {
    this.membersText.textContent = String(state.members);
    if (state.step !== null) this.stepSelect.value = String(state.step);
    this.pauseButton.textContent = state.paused ? "Resume all" : "Pause all";
    this.pauseButton.setAttribute("aria-pressed", state.paused ? "true" : "false");
    const polled = state.step !== null && (this.steps.find((s) => s.index === state.step) || {}).poll;
    const poll = state.poll && state.poll.step === state.step ? state.poll.state : "";
    this.openButton.disabled = !polled || poll === "open";
    this.closeButton.disabled = poll !== "open";
    this.revealButton.disabled = !poll || poll === "revealed";
    this.statusText.textContent = `${state.members} joined · the class is on ${this.stepTitle(state.step)}${state.paused ? " · paused: every screen says look up" : ""}${state.run ? "" : " · press Run to share your simulation"}`;
    if (!state.poll) this.pollBox.hidden = true;
  }

  onResults(results) {
    this.pollBox.hidden = false;
    const words = { open: "open", closed: "closed", revealed: "revealed to the class" };
    this.pollBox.replaceChildren(
      el("p", { class: "class-poll-title", "data-answers": results.answers },
        `Poll on step ${results.step + 1} (${words[results.state] || results.state}): `,
        el("strong", { text: `${results.answers} answered` })),
      ...(this.role === "teacher" && results.state === "open" ? [] : [bars(results)]));
  }

  // Student ---------------------------------------------------------------

  buildBar() {
    this.forkButton = el("button", { type: "button", class: "btn", hidden: true, onclick: () => this.fork() }, "Experiment on my own");
    this.backButton = el("button", { type: "button", class: "btn", hidden: true, onclick: () => this.backToClass() }, "Back to the class's run");
    this.controls.append(el("p", { class: "class-row" }, this.forkButton, " ", this.backButton));
  }

  renderBar(state, before) {
    this.lookup.hidden = !state.paused;
    if (state.paused && (!before || !before.paused)) this.lookup.focus && this.lookup.setAttribute("tabindex", "-1");
    if (state.paused) this.lookup.focus();
    const mode = state.mode === "teacher" ? "following the teacher" : "at your own pace";
    this.statusText.textContent = `Class ${this.code}, ${mode}: ${this.stepTitle(state.step)}.`;
    if (state.mode === "teacher" && state.step !== null && (!before || before.step !== state.step)) {
      const item = document.getElementById(`step-${state.step + 1}`);
      document.querySelectorAll(".step.class-here").forEach((s) => s.classList.remove("class-here"));
      if (item) {
        item.classList.add("class-here");
        item.scrollIntoView({ block: "nearest" });
      }
    }
    if (state.poll && state.poll.state === "open") this.askPoll(state.poll.step);
    else if (!state.poll) {
      this.pollBox.hidden = true;
      this.asked = null;
    }
    // Watch the class's run unless experimenting alone.
    const panel = this.panel;
    if (state.run && !this.forked && panel && panel.runId !== state.run) panel.attach(state.run);
    this.forkButton.hidden = !state.run || this.forked;
    this.backButton.hidden = !this.forked;
  }

  askPoll(index) {
    if (this.asked === index) return;
    this.asked = index;
    const item = document.getElementById(`step-${index + 1}`);
    const ask = item && item.dataset.prediction ? JSON.parse(item.dataset.prediction) : { kind: "number" };
    const sent = el("p", { class: "class-sent", role: "status" });
    const answer = (value, words) => {
      this.send({ type: "poll.answer", step: index, value });
      sent.textContent = `Your answer: ${words}. You can change it until the poll closes.`;
    };
    let form;
    if (ask.kind === "choice") {
      form = el("div", { class: "class-choices", role: "group", "aria-label": "Your answer" },
        ...ask.choices.map((c, i) => el("button", { type: "button", class: "btn", onclick: () => answer(i, c) }, c)));
    } else {
      const input = el("input", { type: "number", step: "any", id: "class-number", inputmode: "decimal" });
      form = el("form", { class: "class-number", onsubmit: (e) => {
        e.preventDefault();
        const value = Number(input.value);
        if (input.value.trim() === "" || !Number.isFinite(value)) {
          sent.textContent = "Type a number first.";
          return;
        }
        answer(value, format(value));
      } },
      el("label", { for: "class-number" }, `Your answer${ask.unit ? ` (${ask.unit})` : ""} `), input, " ",
      el("button", { type: "submit", class: "btn btn-primary" }, "Send"));
    }
    this.pollBox.hidden = false;
    this.pollBox.replaceChildren(el("p", { class: "class-poll-title" }, `Poll on step ${index + 1}: what do you predict?`), form, sent);
  }

  onPollCount(msg) {
    if (msg.state === "closed") {
      this.pollBox.hidden = false;
      this.pollBox.replaceChildren(el("p", { class: "class-poll-title" }, `The poll on step ${msg.step + 1} is closed; the answers come soon.`));
      this.asked = null;
    }
  }

  async fork() {
    const panel = this.panel;
    if (!panel || !panel.latest || !this.state.run) return;
    this.forked = true;
    await panel.start(null, { run: this.state.run, at: panel.latest.seq, t: panel.latest.t.toFixed(1) });
    this.renderBar(this.state, this.state);
  }

  backToClass() {
    this.forked = false;
    if (this.state.run) this.panel.attach(this.state.run);
    this.renderBar(this.state, this.state);
  }
}

function startButton() {
  const button = document.querySelector("[data-start-class]");
  if (!button) return;
  const error = document.querySelector("[data-class=start-error]");
  button.addEventListener("click", async () => {
    button.disabled = true;
    const { response, data } = await postJson("/api/classes/", { lesson: button.dataset.startClass, mode: "teacher" }, { token: csrf() });
    if (response.ok) {
      location.assign(`${location.pathname}?class=${data.code}`);
      return;
    }
    const [field, message] = Object.entries(data.errors || { class: `could not start (HTTP ${response.status})` })[0];
    error.hidden = false;
    error.textContent = `${field}: ${message}`;
    button.disabled = false;
  });
}

if (typeof document !== "undefined") {
  startButton();
  const root = document.getElementById("classroom");
  if (root) {
    const room = new Classroom(root);
    room.connect();
    window.scalelabClassroom = room;
  }
}
