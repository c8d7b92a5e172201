// A lesson page opened in a class (?class=CODE): the class socket, the teacher's
// console (step, pause all, polls with the measured figure, checkpoint questions,
// the mode, the dashboard of students, the shared run) or the student's bar (follow
// the teacher's step, answer polls and questions, see the class's answers once
// shown, look up when paused, experiment on one's own and come back; at their own
// pace, their steps, predictions and answers go to the teacher's dashboard). And,
// for instructors on a lesson page, "Start a class".

import { csrf, el, pageData } from "./dom.js";
import { postJson } from "./runs.js";
import { format } from "./values.js";

const RETRY_MS = 2000;
const TICK_MS = 15000; // the dashboard's "last moved" is brought up to date this often

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

// Which bar a measured number falls in (-1 before the first, rows.length after).
export function measuredBin(results, value) {
  const { edges = [], counts = [] } = results.histogram || {};
  if (!counts.length || !Number.isFinite(value)) return null;
  if (counts.length === 1) return value === edges[0] ? 0 : value < edges[0] ? -1 : counts.length;
  if (value < edges[0]) return -1;
  if (value > edges[edges.length - 1]) return counts.length;
  for (let i = 0; i < counts.length; i += 1) if (value <= edges[i + 1]) return i;
  return counts.length - 1;
}

// The class's answers as bars; `marks` adds the measured figure (drawn at its bin,
// for numbers) and the right choice, each said in words as well as shown.
function bars(results, { label, measured = null, unit = "", right = null, word = "measured" } = {}) {
  const rows = distribution(results);
  const most = Math.max(1, ...rows.map((r) => r.count));
  const bin = results.kind === "number" && measured !== null ? measuredBin(results, measured) : null;
  const marker = () => el("li", { class: "class-bar class-bar-measure", "data-measured": String(measured) },
    el("span", { class: "class-bar-label", text: `▲ ${word}: ${format(measured, unit)}` }));
  const items = rows.map((r, i) => {
    const here = bin === i;
    const item = el("li", { class: `class-bar${here ? " class-bar-at" : ""}${right === i ? " class-bar-right" : ""}` },
      el("span", { class: "class-bar-label", text: `${r.label}${right === i ? " ✓ right" : ""}${here ? ` (${word} here)` : ""}` }),
      el("span", { class: "class-bar-fill", style: `width: ${(r.count / most) * 100}%` }),
      el("span", { class: "class-bar-count", text: String(r.count) }));
    return here ? [item, marker()] : [item];
  }).flat();
  if (bin === -1) items.unshift(marker());
  if (bin !== null && bin >= rows.length) items.push(marker());
  const list = el("ul", { class: "class-bars", "aria-label": label }, ...items);
  if (measured === null || results.kind === "number") return list;
  return el("div", {}, list, el("p", { class: "class-measured", "data-measured": String(measured) }, `The class's run measured ${format(measured, unit)}.`));
}

function idleWords(seconds) {
  if (seconds < 60) return "just now";
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ago`;
}

class Classroom {
  constructor(root) {
    this.root = root;
    this.code = root.dataset.code;
    this.role = root.dataset.role;
    this.steps = pageData("class-steps");
    this.questions = pageData("class-questions") || [];
    this.statusText = root.querySelector("[data-class=status]");
    this.pollBox = root.querySelector("[data-class=poll]");
    this.questionBox = root.querySelector("[data-class=question]");
    this.controls = root.querySelector("[data-class=controls]");
    this.lookup = document.querySelector("[data-class=lookup]");
    this.state = null;
    this.forked = false;
    this.shared = null;
    this.ended = false;
    this.place = null;
    if (this.role === "teacher") this.buildConsole();
    else this.buildBar();
    this.listen();
  }

  // What the student does on the page itself (their step, prediction or answer)
  // goes to the class when it counts there: at their own pace, or for the poll or
  // question that is open.
  listen() {
    if (this.role !== "student") return;
    const ownPace = () => this.state && this.state.mode === "student";
    document.addEventListener("scalelab:step-played", (e) => {
      if (ownPace()) this.send({ type: "progress", step: e.detail.index });
    });
    document.addEventListener("scalelab:predicted", (e) => {
      const { index, entry } = e.detail;
      const poll = this.state && this.state.poll;
      if (ownPace() || (poll && poll.state === "open" && poll.step === index)) {
        this.send({ type: "poll.answer", step: index, value: entry.choice ?? entry.value });
      }
    });
    document.addEventListener("scalelab:answered", (e) => {
      const { index, body } = e.detail;
      const question = this.state && this.state.question;
      if (ownPace() || (question && question.state === "open" && question.index === index)) {
        this.send({ type: "question.answer", question: index, value: body.choice ?? body.value });
      }
    });
  }

  ask(index) {
    const item = document.getElementById(`step-${index + 1}`);
    return item && item.dataset.prediction ? JSON.parse(item.dataset.prediction) : { kind: "number", label: "the figure", unit: "" };
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
    if (msg.type === "hello") this.place = msg.place || null;
    else if (msg.type === "class.state") this.onState(msg);
    else if (msg.type === "poll.results") this.onResults(msg);
    else if (msg.type === "question.results") this.onQuestionResults(msg);
    else if (msg.type === "class.members") this.onMembers(msg);
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
      this.questionBox.hidden = true;
      this.controls.replaceChildren();
      return;
    }
    if (!state.question) {
      this.questionBox.hidden = true;
      this.questioned = null;
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
    this.modeButton = button("Let everyone work at their own pace", () => this.send({ type: "mode", mode: this.state && this.state.mode === "student" ? "teacher" : "student" }));
    this.questionSelect = el("select", { id: "class-question", "aria-label": "Question to ask the class" },
      ...this.questions.map((q) => el("option", { value: q.index }, `${q.index + 1}. ${q.prompt.slice(0, 70)}`)));
    this.askButton = button("Ask the class", () => this.send({ type: "question.open", question: Number(this.questionSelect.value) }));
    this.closeQuestionButton = button("Close it and show the results", () => this.send({ type: "question.close", question: this.state.question.index }));
    this.controls.append(
      el("p", { class: "class-row" },
        el("label", { for: "class-step" }, "Class step "), this.stepSelect, " ",
        button("Show it to the class", () => this.send({ type: "step", step: Number(this.stepSelect.value) }))),
      el("p", { class: "class-row" }, this.pauseButton, " ", this.openButton, " ", this.closeButton, " ", this.revealButton),
      ...(this.questions.length ? [el("p", { class: "class-row" },
        el("label", { for: "class-question" }, "Checkpoint question "), this.questionSelect, " ", this.askButton, " ", this.closeQuestionButton)] : []),
      el("p", { class: "class-row" }, this.modeButton),
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
    // The figure the shared run measured for a step goes over the class's answers.
    document.addEventListener("scalelab:measured", (e) => {
      const { index, measured } = e.detail;
      const state = this.state;
      if (!state || state.mode !== "teacher" || !this.panel || this.panel.runId !== state.run) return;
      if (Number.isFinite(measured.after)) this.send({ type: "measured", step: index, value: measured.after });
    });
    this.dashboard = this.root.querySelector("[data-class=dashboard]");
    this.dashboardBody = this.root.querySelector("[data-class=dashboard-body]");
    setInterval(() => this.members && this.onMembers(this.members, true), TICK_MS);
  }

  onMembers(msg, tick = false) {
    if (!tick) {
      this.members = msg;
      this.membersAt = performance.now();
    }
    const elapsed = (performance.now() - this.membersAt) / 1000;
    if (!msg.members.length) {
      this.dashboardBody.replaceChildren(el("p", {}, "No one has joined yet."));
      return;
    }
    const polled = this.steps.filter((s) => s.poll);
    const head = el("tr", {}, ...["Student", "Step", "Predictions", "Answers", "Last moved"].map((h) => el("th", { scope: "col" }, h)));
    const rows = msg.members.map((m) => {
      const still = m.moved_s + elapsed;
      const idle = still >= msg.idle_s;
      const predictions = polled.filter((s) => m.predictions[s.index] !== undefined).map((s) => `${s.index + 1}: ${m.predictions[s.index]}`);
      const answers = Object.entries(m.answers).map(([q, a]) => `Q${Number(q) + 1}: ${a}`);
      return el("tr", { class: idle ? "class-idle" : "", "data-idle": idle ? "true" : "false" },
        el("th", { scope: "row" }, m.name),
        el("td", {}, this.stepTitle(m.step)),
        el("td", {}, predictions.length ? `${predictions.length} of ${polled.length} (${predictions.join("; ")})` : `0 of ${polled.length}`),
        el("td", {}, answers.length ? answers.join("; ") : "–"),
        el("td", {}, idle ? `⚠ not moved for ${Math.floor(still / 60)} min` : idleWords(still)));
    });
    const stuck = msg.members.filter((m) => m.moved_s + elapsed >= msg.idle_s).length;
    this.dashboardBody.replaceChildren(
      el("p", { role: "status" }, `${msg.members.length} students${stuck ? `, ${stuck} not moved for ${Math.round(msg.idle_s / 60)} minutes or more` : ""}.`),
      el("div", { class: "class-table-wrap" }, el("table", { class: "class-table" }, el("thead", {}, head), el("tbody", {}, ...rows))));
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
    const ownPace = state.mode === "student";
    this.modeButton.textContent = ownPace ? "Bring everyone back" : "Let everyone work at their own pace";
    if (ownPace && this.modeBefore !== "student") this.dashboard.open = true;
    this.modeBefore = state.mode;
    const question = state.question;
    this.askButton.disabled = Boolean(question && question.state === "open");
    this.closeQuestionButton.disabled = !question || question.state !== "open";
    const where = ownPace ? "each student at their own pace (the dashboard shows where)" : `the class is on ${this.stepTitle(state.step)}`;
    // The count of students joined has its own line above, in large type.
    const status = `${where}${state.paused ? " · paused: every screen says look up" : ""}${state.run || ownPace ? "" : " · press Run to share your simulation"}`;
    this.statusText.textContent = status.charAt(0).toUpperCase() + status.slice(1);
    if (!state.poll) this.pollBox.hidden = true;
  }

  onResults(results) {
    this.pollBox.hidden = false;
    const words = { open: "open", closed: "closed", revealed: "revealed to the class" };
    const ask = this.ask(results.step);
    const measured = results.state === "revealed" && results.measured !== null && results.measured !== undefined ? results.measured : null;
    const shown = this.role === "teacher" && results.state === "open" ? [] : [bars(results, {
      label: `The class's answers to step ${results.step + 1}`, measured, unit: ask.unit,
    })];
    const after = results.state === "revealed" && measured === null
      ? [el("p", { class: "class-measured" }, "Once the step has run, the figure the class's run measured is drawn here.")]
      : [];
    this.pollBox.replaceChildren(
      el("p", { class: "class-poll-title", "data-answers": results.answers },
        `Poll on step ${results.step + 1} (${words[results.state] || results.state}): `,
        el("strong", { text: `${results.answers} answered` })),
      ...shown, ...after);
  }

  // Checkpoint questions -------------------------------------------------

  onQuestionResults(results) {
    const question = this.questions[results.question];
    if (!question) return;
    this.questionBox.hidden = false;
    const closed = results.state === "closed";
    const title = el("p", { class: "class-poll-title", "data-answers": results.answers },
      `Question ${results.question + 1}${closed ? " (closed)" : ""}: ${question.prompt} `,
      el("strong", { text: `${results.answers} answered` }));
    if (!closed) {
      // While it is open the teacher's screen (the projector) shows the count only.
      if (this.role === "teacher") this.questionBox.replaceChildren(title);
      return;
    }
    const answer = results.kind === "number" && results.answer !== null && results.answer !== undefined
      ? [el("p", { class: "class-measured" }, `The answer: ${format(results.answer, question.unit)}${results.tolerance ? ` (within ${format(results.tolerance)})` : ""}.`)]
      : [];
    this.questionBox.replaceChildren(title,
      bars(results, { label: `The class's answers to question ${results.question + 1}`, right: results.correct ?? null, measured: results.kind === "number" ? results.answer ?? null : null, word: "the answer", unit: question.unit }),
      ...answer);
    this.questioned = null;
  }

  askQuestion(index) {
    if (this.questioned === index) return;
    const question = this.questions[index];
    if (!question) return;
    this.questioned = index;
    const sent = el("p", { class: "class-sent", role: "status" });
    const answer = (value, words) => {
      this.send({ type: "question.answer", question: index, value });
      sent.textContent = `Your answer: ${words}. You can change it until the question closes.`;
    };
    this.questionBox.hidden = false;
    this.questionBox.replaceChildren(
      el("p", { class: "class-poll-title" }, `Question ${index + 1} from your teacher: ${question.prompt}`),
      this.answerForm(`class-q${index}`, question.kind, question.choices, question.unit, answer), sent);
  }

  // A choice's buttons, or a number's field, calling answer(value, words).
  answerForm(id, kind, choices, unit, answer) {
    if (kind === "choice") {
      return el("div", { class: "class-choices", role: "group", "aria-label": "Your answer" },
        ...choices.map((c, i) => el("button", { type: "button", class: "btn", onclick: () => answer(i, c) }, c)));
    }
    const input = el("input", { type: "number", step: "any", id, inputmode: "decimal" });
    const note = el("span", { class: "sim-error", role: "alert" });
    return el("form", { class: "class-number", onsubmit: (e) => {
      e.preventDefault();
      const value = Number(input.value);
      if (input.value.trim() === "" || !Number.isFinite(value)) {
        note.textContent = "Type a number first.";
        input.setAttribute("aria-invalid", "true");
        return;
      }
      note.textContent = "";
      input.removeAttribute("aria-invalid");
      answer(value, format(value, unit));
    } },
    el("label", { for: id }, `Your answer${unit ? ` (${unit})` : ""} `), input, " ",
    el("button", { type: "submit", class: "btn btn-primary" }, "Send"), " ", note);
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
    const ownPace = state.mode === "student";
    this.statusText.textContent = ownPace
      ? `Class ${this.code}, at your own pace: work through the steps with your own simulation; your teacher sees where you are.`
      : `Class ${this.code}, following the teacher: ${this.stepTitle(state.step)}.`;
    if (ownPace && (!before || before.mode !== "student")) {
      document.querySelectorAll(".step.class-here").forEach((s) => s.classList.remove("class-here"));
      // Back where they were, if they had been at their own pace before.
      const item = this.place && document.getElementById(`step-${this.place.step + 1}`);
      if (item && this.place.step > 0) item.scrollIntoView({ block: "nearest" });
      // Their own run: the class's is the teacher's to drive.
      const panel = this.panel;
      if (panel && state.run && panel.runId === state.run && !this.forked) panel.start();
    }
    if (!ownPace && state.step !== null && (!before || before.step !== state.step || before.mode !== state.mode)) {
      const item = document.getElementById(`step-${state.step + 1}`);
      document.querySelectorAll(".step.class-here").forEach((s) => s.classList.remove("class-here"));
      if (item) {
        item.classList.add("class-here");
        item.scrollIntoView({ block: "nearest" });
      }
    }
    if (state.poll && state.poll.state === "open" && !ownPace) this.askPoll(state.poll.step);
    else if (!state.poll) {
      this.pollBox.hidden = true;
      this.asked = null;
    }
    if (state.question && state.question.state === "open" && !ownPace) this.askQuestion(state.question.index);
    // Watch the class's run unless experimenting alone, or at one's own pace.
    const panel = this.panel;
    if (state.run && !this.forked && !ownPace && panel && panel.runId !== state.run) panel.attach(state.run);
    this.forkButton.hidden = !state.run || this.forked || ownPace;
    this.backButton.hidden = !this.forked || ownPace;
    if (ownPace) this.forked = false;
  }

  askPoll(index) {
    if (this.asked === index) return;
    this.asked = index;
    const ask = this.ask(index);
    const sent = el("p", { class: "class-sent", role: "status" });
    const answer = (value, words) => {
      this.send({ type: "poll.answer", step: index, value });
      sent.textContent = `Your answer: ${words}. You can change it until the poll closes.`;
    };
    this.pollBox.hidden = false;
    this.pollBox.replaceChildren(el("p", { class: "class-poll-title" }, `Poll on step ${index + 1}: what do you predict?`),
      this.answerForm("class-number", ask.kind, ask.choices || [], ask.unit, answer), sent);
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
