// The lesson change form: a live preview that re-renders as the author types,
// preset fields that follow the chosen engine, question fields that follow the
// question's kind, and steps and questions ordered by drag and drop or buttons.

import { el } from "../dom.js";

const DEBOUNCE_MS = 600;
const form = document.getElementById("lesson_form");

// Steps and questions: order by drag and drop or by buttons -------------------------

function partRows(group) {
  return [...group.querySelectorAll(".inline-related")].filter((row) => !row.classList.contains("empty-form"));
}

function renumber(group) {
  partRows(group).forEach((row, index) => {
    const input = row.querySelector("input.part-order");
    if (input && input.value !== String(index)) input.value = String(index);
  });
}

function renumberAll() {
  for (const group of document.querySelectorAll(".js-inline-admin-formset")) renumber(group);
}

// Django's inlines.js renames every form by its position when an unsaved one is
// removed; saved forms must keep their own index (it pairs them with their
// object), so put the indices back: saved forms first, added ones after.
function reindex(group) {
  const prefix = JSON.parse(group.dataset.inlineFormset).options.prefix;
  const pattern = new RegExp(`${prefix}-(\\d+|__prefix__)`);
  const initial = Number(document.getElementById(`id_${prefix}-INITIAL_FORMS`).value);
  let next = initial;
  for (const row of partRows(group)) {
    const index = row.dataset.formIndex !== undefined ? Number(row.dataset.formIndex) : next++;
    row.id = `${prefix}-${index}`;
    for (const node of row.querySelectorAll("[id], [name], [for], [aria-describedby]")) {
      for (const attr of ["id", "name", "for", "aria-describedby"]) {
        const value = node.getAttribute(attr);
        if (value) node.setAttribute(attr, value.replace(pattern, `${prefix}-${index}`));
      }
    }
  }
}

function announce(group, text) {
  const live = group.querySelector(".parts-live");
  if (live) live.textContent = text;
}

function rowName(row) {
  const title = row.querySelector("input[name$='-title'], textarea[name$='-prompt']");
  return (title && title.value.trim()) || "this item";
}

function move(row, direction) {
  const group = row.closest(".js-inline-admin-formset");
  const rows = partRows(group);
  const index = rows.indexOf(row);
  const target = rows[index + direction];
  if (!target) return;
  if (direction < 0) target.before(row);
  else target.after(row);
  renumber(group);
  announce(group, `Moved ${rowName(row)} to position ${index + direction + 1} of ${rows.length}.`);
  form.dispatchEvent(new Event("input"));
}

function addPartTools(row) {
  if (row.querySelector(".part-tools")) return;
  const heading = row.querySelector("h3");
  const orderRow = row.querySelector(".field-order");
  if (!heading || !orderRow) return;
  orderRow.classList.add("hidden");
  const up = el("button", { type: "button", class: "button part-move", "data-move": "-1", text: "Move up" });
  const down = el("button", { type: "button", class: "button part-move", "data-move": "1", text: "Move down" });
  const handle = el("span", { class: "part-handle", draggable: "true", title: "Drag to reorder", "aria-hidden": "true", text: "⠿" });
  heading.prepend(handle);
  heading.append(el("span", { class: "part-tools" }, up, " ", down));
}

function setupParts() {
  for (const group of document.querySelectorAll(".js-inline-admin-formset")) {
    if (!group.querySelector(".lesson-parts")) continue;
    group.append(el("p", { class: "parts-live visually-hidden", role: "status", "aria-live": "polite" }));
    for (const row of partRows(group)) {
      const match = row.id.match(/-(\d+)$/);
      if (match) row.dataset.formIndex = match[1];
      addPartTools(row);
    }
  }
  document.addEventListener("click", (e) => {
    const button = e.target.closest(".part-move");
    if (!button) return;
    e.preventDefault();
    move(button.closest(".inline-related"), Number(button.dataset.move));
    button.focus();
  });
  document.addEventListener("formset:added", (e) => {
    const row = e.target;
    addPartTools(row);
    const group = row.closest(".js-inline-admin-formset");
    if (group) renumber(group);
    updateQuestion(row);
  });
  document.addEventListener("formset:removed", () => {
    // inlines.js renames the forms just after sending this event.
    setTimeout(() => {
      for (const group of document.querySelectorAll(".js-inline-admin-formset")) {
        if (group.querySelector(".lesson-parts")) {
          reindex(group);
          renumber(group);
        }
      }
      form.dispatchEvent(new Event("input"));
    });
  });

  let dragged = null;
  document.addEventListener("dragstart", (e) => {
    const handle = e.target.closest && e.target.closest(".part-handle");
    if (!handle) return;
    dragged = handle.closest(".inline-related");
    dragged.classList.add("is-dragged");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", rowName(dragged));
  });
  document.addEventListener("dragover", (e) => {
    if (!dragged) return;
    const over = e.target.closest && e.target.closest(".inline-related");
    if (!over || over === dragged || over.classList.contains("empty-form")) return;
    if (over.parentElement !== dragged.parentElement) return;
    e.preventDefault();
    const box = over.getBoundingClientRect();
    if (e.clientY < box.top + box.height / 2) over.before(dragged);
    else over.after(dragged);
  });
  document.addEventListener("drop", (e) => {
    if (dragged) e.preventDefault();
  });
  document.addEventListener("dragend", () => {
    if (!dragged) return;
    const group = dragged.closest(".js-inline-admin-formset");
    dragged.classList.remove("is-dragged");
    renumber(group);
    announce(group, `Moved ${rowName(dragged)} to position ${partRows(group).indexOf(dragged) + 1}.`);
    dragged = null;
    form.dispatchEvent(new Event("input"));
  });
  form.addEventListener("submit", renumberAll);
}

// Questions: show the fields of the question's kind ----------------------------------

function updateQuestion(row) {
  const kind = row.querySelector("select.question-kind");
  if (!kind) return;
  const number = kind.value === "number";
  for (const name of ["answer", "tolerance", "unit", "params"]) {
    const field = row.querySelector(`.field-${name}`);
    if (field) field.hidden = !number;
  }
  const choices = row.querySelector(".field-choices");
  if (choices) choices.hidden = number;
}

// Steps: the prediction's choices, figure and settle time only when it asks one.
function updatePrediction(row) {
  const kind = row.querySelector("select.prediction-kind");
  if (!kind) return;
  for (const name of ["choices", "measure", "settle"]) {
    const field = row.querySelector(`.field-${name}`);
    if (field) field.hidden = !kind.value || (name === "choices" && kind.value !== "choice");
  }
}

function setupQuestions() {
  for (const row of document.querySelectorAll(".inline-related")) {
    updateQuestion(row);
    updatePrediction(row);
  }
  document.addEventListener("change", (e) => {
    if (e.target.matches("select.question-kind")) updateQuestion(e.target.closest(".inline-related"));
    if (e.target.matches("select.prediction-kind")) updatePrediction(e.target.closest(".inline-related"));
  });
}

// Preset: one field per parameter of the chosen engine -------------------------------

let declarations = null;

async function engineDeclarations(url) {
  if (!declarations) {
    const response = await fetch(url, { credentials: "same-origin" });
    const body = await response.json();
    declarations = Object.fromEntries(body.engines.map((e) => [e.kind, e]));
  }
  return declarations;
}

function shown(value, type) {
  if (type === "bool") return value ? "yes" : "no";
  return String(value);
}

function paramRow(p) {
  const id = `id_preset_${p.name}`;
  const helpId = `${id}_helptext`;
  const label = p.label + (p.unit ? ` (${p.unit})` : "");
  const help = [p.help ? `${p.help.replace(/\.$/, "")}.` : "", `Allowed: ${p.allowed}.`, `Default: ${shown(p.default, p.type)}.`]
    .filter(Boolean)
    .join(" ");
  const common = { name: `preset_${p.name}`, id, "aria-describedby": helpId, "data-param": p.name };
  let line;
  if (p.type === "bool") {
    const input = el("input", { ...common, type: "checkbox", checked: p.default });
    line = el("div", { class: "flex-container checkbox-row" }, input, el("label", { class: "vCheckboxLabel", for: id, text: label }));
  } else {
    let input;
    if (p.type === "choice") {
      input = el("select", common, ...p.choices.map((c) => el("option", { value: c, selected: c === p.default, text: c })));
    } else {
      input = el("input", {
        ...common,
        type: "number",
        value: p.default,
        min: p.min,
        max: p.max,
        step: p.type === "int" ? 1 : "any",
      });
    }
    line = el("div", { class: "flex-container" }, el("label", { for: id, text: `${label}:` }), input);
  }
  return el(
    "div",
    { class: `form-row field-preset_${p.name}` },
    el("div", {}, line, el("div", { class: "help", id: helpId }, el("div", { text: help })))
  );
}

function setupEngine(pane) {
  const select = document.getElementById("id_engine");
  if (!select || !pane) return;
  select.addEventListener("change", async () => {
    const fieldset = select.closest("fieldset");
    for (const row of fieldset.querySelectorAll(".form-row[class*='field-preset_']")) row.remove();
    const engine = (await engineDeclarations(pane.dataset.enginesUrl))[select.value];
    if (!engine) return;
    const rows = engine.params.map(paramRow);
    select.closest(".form-row").after(...rows);
    form.dispatchEvent(new Event("input"));
  });
}

// Live preview: the whole form is posted into a hidden frame, shown once loaded ------

function setupPreview(pane) {
  const frames = [...pane.querySelectorAll(".preview-frame")];
  const status = pane.querySelector(".preview-status");
  const url = pane.dataset.previewUrl;
  let timer = null;
  let loading = false;
  let again = false;

  const current = () => frames.find((f) => f.classList.contains("is-current"));
  const spare = () => frames.find((f) => !f.classList.contains("is-current"));

  // What the last preview showed: leaving a field fires "change" without any
  // edit, and reloading then would only stop a simulation the author is running.
  let shownData = null;
  const formData = () => new URLSearchParams(new FormData(form)).toString();

  function refresh() {
    if (loading) {
      again = true;
      return;
    }
    renumberAll();
    const data = formData();
    if (data === shownData) return;
    shownData = data;
    loading = true;
    again = false;
    const frame = spare();
    frame.dataset.pending = "true";
    const action = form.getAttribute("action");
    const target = form.getAttribute("target");
    form.setAttribute("action", url);
    form.setAttribute("target", frame.name);
    status.textContent = "Updating the preview…";
    HTMLFormElement.prototype.submit.call(form);
    if (action === null) form.removeAttribute("action");
    else form.setAttribute("action", action);
    if (target === null) form.removeAttribute("target");
    else form.setAttribute("target", target);
  }

  function shownFrame(frame) {
    const old = current();
    let y = 0;
    try {
      y = old.contentWindow.scrollY;
    } catch {
      y = 0;
    }
    frame.contentWindow.scrollTo(0, y);
    old.classList.remove("is-current");
    old.setAttribute("aria-hidden", "true");
    old.setAttribute("tabindex", "-1");
    old.title = "Live preview (loading)";
    frame.classList.add("is-current");
    frame.removeAttribute("aria-hidden");
    frame.removeAttribute("tabindex");
    frame.title = "Live preview of the lesson as students will see it";
    // Stop the old page (and any simulation running in it).
    old.src = "about:blank";
  }

  for (const frame of frames) {
    frame.addEventListener("load", () => {
      if (frame.dataset.pending !== "true") return;
      delete frame.dataset.pending;
      shownFrame(frame);
      const doc = frame.contentDocument;
      const errors = doc && doc.body && doc.body.classList.contains("preview-errors");
      const count = errors ? doc.querySelectorAll(".preview-error-list li").length : 0;
      const time = new Date().toLocaleTimeString();
      status.textContent = errors
        ? `The lesson has ${count} error${count === 1 ? "" : "s"} (listed in the preview), at ${time}.`
        : `Preview updated at ${time}.`;
      pane.dataset.state = errors ? "errors" : "ready";
      loading = false;
      if (again) refresh();
    });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, DEBOUNCE_MS);
  }
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);

  if (pane.dataset.adding === "true") status.textContent = "Start writing: the preview appears here as you type.";
  else refresh();
}

if (form) {
  const pane = document.querySelector(".authoring-preview");
  setupParts();
  setupQuestions();
  setupEngine(pane);
  if (pane) setupPreview(pane);
}
