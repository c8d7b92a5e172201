// Lesson page: step navigation for presenters (arrows, PageUp/PageDown, Enter),
// checkpoint questions graded at once, full screen (F), projector mode (P), help (?),
// and, where the page is one column (a phone), the step being played docked above
// the simulation it drives.

import { csrf } from "./dom.js";
import { postJson } from "./runs.js";

const steps = [...document.querySelectorAll("section.steps li.step")];
let current = -1;

function typing(target) {
  return target.closest("input, select, textarea, [contenteditable]");
}

function goTo(index) {
  if (!steps.length) return;
  current = Math.max(0, Math.min(steps.length - 1, index));
  steps.forEach((s, i) => {
    s.classList.toggle("current", i === current);
    if (i === current) s.setAttribute("aria-current", "step");
    else s.removeAttribute("aria-current");
  });
  const step = steps[current];
  step.focus({ preventScroll: true });
  const reduce = matchMedia("(prefers-reduced-motion: reduce)").matches;
  step.scrollIntoView({ block: "center", behavior: reduce ? "auto" : "smooth" });
  document.body.dataset.step = String(current + 1);
}

function fullscreen() {
  const target = document.querySelector(".sim") || document.documentElement;
  if (document.fullscreenElement) document.exitFullscreen();
  else if (target.requestFullscreen) target.requestFullscreen().catch(() => {});
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
  const help = document.getElementById("keys-help");
  if (e.key === "?") {
    e.preventDefault();
    if (help.open) help.close();
    else help.showModal();
    return;
  }
  if (help && help.open) return;
  if (e.target.closest("button, a, summary") && (e.key === "Enter" || e.key === " ")) return;
  switch (e.key) {
    case "ArrowRight":
    case "ArrowDown":
    case "PageDown":
      if (!steps.length) return;
      e.preventDefault();
      goTo(current + 1);
      break;
    case "ArrowLeft":
    case "ArrowUp":
    case "PageUp":
      if (!steps.length) return;
      e.preventDefault();
      goTo(current - 1);
      break;
    case "Enter":
      if (current >= 0) {
        const button = steps[current].querySelector("[data-step-actions]");
        const ask = steps[current].querySelector("form.prediction[data-phase=unanswered] input");
        if (button && button.disabled && ask) {
          // Not playable yet: take the student to the prediction it waits for.
          e.preventDefault();
          ask.focus();
        } else if (button) {
          e.preventDefault();
          button.click();
        }
      }
      break;
    case "f":
    case "F":
      e.preventDefault();
      fullscreen();
      break;
    case "p":
    case "P":
      e.preventDefault();
      document.getElementById("projector-toggle").click();
      break;
    default:
  }
});

steps.forEach((step, i) => step.addEventListener("focusin", () => { current = i; }));

// One column (a phone, a narrow window): the simulation comes after every step and
// question, thousands of pixels below the step that drives it. Playing a step brings
// the simulation into view with a bar docked above it that names the step, shows how
// it is going and leads back to it; the page keeps its order.
const layout = document.querySelector(".lesson-layout");
const aside = document.querySelector(".lesson-sim");

function oneColumn() {
  return getComputedStyle(layout).gridTemplateColumns.trim().split(/\s+/).length === 1;
}

function stepState(step) {
  const state = step.querySelector(".step-state");
  if (state && state.textContent.trim()) return state.textContent.trim();
  const button = step.querySelector("[data-step-actions]");
  const words = { running: "Running…", done: "Done.", refused: "Done, but the simulation refused an action.", stopped: "Not finished." };
  return (button && words[button.dataset.stepState]) || "";
}

function buildDock() {
  const dock = document.createElement("div");
  dock.className = "step-dock";
  dock.id = "step-dock";
  dock.hidden = true;
  dock.tabIndex = -1;
  dock.setAttribute("role", "region");
  dock.setAttribute("aria-labelledby", "step-dock-title");
  const title = document.createElement("p");
  title.className = "step-dock-title";
  title.id = "step-dock-title";
  const state = document.createElement("p");
  state.className = "step-dock-state";
  const back = document.createElement("button");
  back.type = "button";
  back.className = "btn btn-quiet";
  back.textContent = "Back to the step";
  dock.append(title, state, back);
  aside.prepend(dock);
  return { dock, title, state, back };
}

if (layout && aside && steps.length) {
  const dock = buildDock();
  let docked = -1;
  const render = () => {
    if (docked < 0) return;
    const step = steps[docked];
    const name = step.querySelector("h3").textContent;
    dock.title.textContent = `Step ${docked + 1} of ${steps.length}: ${name}`;
    // Once a step with a prediction has run, its figures show here too.
    const reveal = step.querySelector(".reveal:not([hidden])");
    dock.state.textContent = [stepState(step), reveal ? reveal.dataset.short : ""].filter(Boolean).join(" ");
  };
  // The page's scroll padding is the bar's height, whatever changed it (a longer state,
  // a figure, a rotated phone), so nothing that takes focus hides under it (WCAG 2.4.11);
  // when the bar grows, what was just below it moves down with it rather than slide under.
  let shown = 0;
  const fit = () => {
    const height = dock.dock.hidden ? 0 : dock.dock.offsetHeight;
    if (height === shown) return;
    if (height) document.documentElement.style.setProperty("--dock-height", `${height + 8}px`);
    if (height && shown) window.scrollBy({ top: shown - height, behavior: "instant" });
    shown = height;
  };
  new ResizeObserver(fit).observe(dock.dock);
  // The step's own status (written by the panel) is the one screen readers hear; the
  // dock only mirrors it.
  new MutationObserver(render).observe(document.querySelector("section.steps"), {
    subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["data-step-state", "hidden"],
  });
  dock.back.addEventListener("click", () => {
    const index = docked;
    dock.dock.hidden = true;
    document.documentElement.classList.remove("step-docked");
    if (index >= 0) goTo(index);
  });
  for (const [i, step] of steps.entries()) {
    const button = step.querySelector("[data-step-actions]");
    if (!button) continue;
    button.addEventListener("click", () => {
      if (!oneColumn()) return;
      docked = i;
      render();
      dock.dock.hidden = false;
      document.documentElement.classList.add("step-docked");
      current = i;
      const run = document.querySelector("#sim .btn-primary");
      const target = (run && run.closest("[role=toolbar]")) || run || aside;
      // A jump, never a glide: the simulation is thousands of pixels away, and the
      // panel redraws while it starts a run.
      // The run controls land just below the bar.
      fit();
      target.scrollIntoView({ block: "start", behavior: "instant" });
      dock.dock.focus({ preventScroll: true });
    });
  }
}

// Checkpoint questions: graded by the server (which records progress), or, in an
// author's preview of an unsaved lesson, in the page.
const section = document.querySelector("section.questions[data-lesson]");
// Only a JSON script element counts: a lesson's text can hold none, so nothing in it
// can pose as the preview's answers.
const previewAnswers = document.querySelector('script[type="application/json"]#question-answers');

function gradeLocally(question, body) {
  if (question.kind === "choice") {
    const picked = question.choices[body.choice];
    return { correct: picked.correct, why: picked.why, right: question.choices.findIndex((c) => c.correct), explain: question.explain };
  }
  return { correct: Math.abs(body.value - question.answer) <= question.tolerance, answer: question.answer, shown: question.shown, unit: question.unit, explain: question.explain };
}

for (const form of document.querySelectorAll("form.question")) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const index = Number(form.dataset.index);
    const feedback = form.querySelector(".feedback");
    let body;
    if (form.dataset.kind === "choice") {
      const picked = form.querySelector("input[type=radio]:checked");
      if (!picked) {
        feedback.className = "feedback wrong";
        feedback.textContent = "Pick one answer first.";
        return;
      }
      body = { choice: Number(picked.value) };
    } else {
      const input = form.querySelector("input[type=number]");
      if (input.value === "" || Number.isNaN(Number(input.value))) {
        feedback.className = "feedback wrong";
        feedback.textContent = "Type a number first.";
        input.setAttribute("aria-invalid", "true");
        return;
      }
      input.removeAttribute("aria-invalid");
      body = { value: Number(input.value) };
    }
    let result;
    if (previewAnswers) {
      result = gradeLocally(JSON.parse(previewAnswers.textContent)[index], body);
    } else {
      const { response, data } = await postJson(`/lessons/${section.dataset.lesson}/questions/${index}/`, body, { token: csrf() });
      result = data;
      if (!response.ok) {
        feedback.className = "feedback wrong";
        feedback.textContent = Object.values(result.errors || { error: "Could not check the answer." })[0];
        return;
      }
    }
    feedback.className = `feedback ${result.correct ? "right" : "wrong"}`;
    const verdict = result.correct ? "Right." : "Not quite.";
    let detail = result.why || "";
    if (!result.correct && result.answer !== undefined) {
      detail = `The answer is ${result.shown ?? result.answer}${result.unit ? ` ${result.unit}` : ""}.`;
    }
    // A choice's own words may already give the verdict ("Right: ..."): say it once.
    const said = /^(right|not quite|wrong|no|yes)\b/i.test(detail);
    feedback.textContent = [said ? "" : verdict, detail, result.explain].filter(Boolean).join(" ");
    form.dataset.result = result.correct ? "right" : "wrong";
    // A class at its own pace hears of the answer (classroom.js).
    form.dispatchEvent(new CustomEvent("scalelab:answered", { bubbles: true, detail: { index, body } }));
  });
}
