// The simulation panel's controls, generated from the engine's declaration: a
// row per parameter (a select, a checkbox, or a slider with a number beside it)
// and a button per command with inputs for its arguments.

import { el } from "./dom.js";
import { scaleFor } from "./values.js";

// One parameter's row; `onChange(value)` when the student sets a valid value.
export function paramControl(p, { id, value, onChange, onInvalid }) {
  const inputId = id(`p-${p.name}`);
  const helpId = `${inputId}-help`;
  const help = el("small", { id: helpId, class: "help", text: `${p.help} Allowed: ${p.allowed}.` });
  const label = el("label", { for: inputId }, p.label, p.unit ? el("span", { class: "unit", text: ` (${p.unit})` }) : null);
  const row = el("div", { class: "param", "data-param": p.name });
  let input;
  if (p.type === "choice") {
    input = el("select", { id: inputId, name: p.name, "aria-describedby": helpId },
      ...p.choices.map((c) => el("option", { value: c, selected: c === value }, c.replaceAll("_", " "))));
    input.addEventListener("change", () => onChange(input.value));
    row.append(label, input);
  } else if (p.type === "bool") {
    input = el("input", { type: "checkbox", id: inputId, name: p.name, "aria-describedby": helpId, checked: value });
    input.addEventListener("change", () => onChange(input.checked));
    row.append(input, label);
  } else {
    const scale = scaleFor(p);
    const slider = el("input", { type: "range", min: 0, max: 1000, step: 1, value: scale.toSlider(value),
      "aria-label": `${p.label} slider`, "aria-describedby": helpId, tabindex: -1 });
    input = el("input", { type: "number", id: inputId, name: p.name, min: p.min, max: p.max,
      step: p.type === "int" ? 1 : "any", value: value, "aria-describedby": helpId, inputmode: "decimal" });
    slider.addEventListener("input", () => { input.value = scale.fromSlider(Number(slider.value)); });
    slider.addEventListener("change", () => onChange(scale.fromSlider(Number(slider.value))));
    input.addEventListener("change", () => {
      const v = Number(input.value);
      if (input.value === "" || Number.isNaN(v) || v < p.min || v > p.max || (p.type === "int" && !Number.isInteger(v))) {
        onInvalid(`${p.label}: must be ${p.allowed}.`);
        input.setAttribute("aria-invalid", "true");
        return;
      }
      input.removeAttribute("aria-invalid");
      slider.value = scale.toSlider(v);
      onChange(v);
    });
    row.append(label, el("div", { class: "param-inputs" }, slider, input));
    row.slider = slider;
    row.scale = scale;
  }
  row.append(help);
  row.input = input;
  return row;
}

// One command's button and argument inputs; `onRun(command, args)` when pressed.
export function commandControl(c, index, id, onRun) {
  const wrap = el("div", { class: "command", "data-command": c.name });
  const args = {};
  for (const a of c.args) {
    const argId = id(`c-${c.name}-${a.name}`);
    const input = argInput(a, argId);
    args[a.name] = { input, spec: a };
    wrap.append(el("label", { for: argId, class: "arg-label" }, a.label), input);
  }
  const key = index < 9 ? String(index + 1) : null;
  const button = el("button", { type: "button", class: "btn btn-command", title: c.help, "aria-keyshortcuts": key,
    "data-command": c.name, onclick: () => onRun(c, args) }, c.label, key ? el("kbd", { class: "key", "aria-hidden": "true", text: key }) : null);
  wrap.prepend(button);
  wrap.button = button;
  return wrap;
}

// Most choices a menu lists before a number box serves better.
const MENU_LIMIT = 64;

// The input of one command argument. A value that stands for none chosen (`unset`,
// "every page") is offered in words, never as a bare -1.
function argInput(a, argId) {
  if (a.type === "choice") {
    return el("select", { id: argId }, ...a.choices.map((x) => el("option", { value: x, selected: x === a.default }, x)));
  }
  if (a.type === "bool") return el("input", { id: argId, type: "checkbox", checked: a.default, class: "arg" });
  if (a.unset && a.max - a.min <= MENU_LIMIT) {
    const numbers = [];
    for (let v = a.min + 1; v <= a.max; v += 1) numbers.push(el("option", { value: v, selected: v === a.default }, String(v)));
    return el("select", { id: argId }, el("option", { value: a.min, selected: a.default === a.min }, a.unset), ...numbers);
  }
  const input = el("input", { id: argId, type: "number", min: a.unset ? a.min + 1 : a.min, max: a.max,
    step: a.type === "int" ? 1 : "any", value: a.unset && a.default === a.min ? "" : a.default, class: "arg" });
  if (a.unset) {
    input.placeholder = a.unset;
    input.dataset.unset = String(a.min);
  }
  return input;
}

// The value of a command argument's input, as the command takes it.
export function argValue(input, spec) {
  if (spec.type === "bool") return input.checked;
  if (spec.type === "choice") return input.value;
  if (input.value === "" && input.dataset.unset !== undefined) return Number(input.dataset.unset);
  return Number(input.value);
}

// Show `values` in the parameter rows of `form` (after a run or a step changed them).
export function syncInputs(form, values) {
  for (const row of form.querySelectorAll(".param")) {
    const v = values[row.dataset.param];
    if (row.input.type === "checkbox") row.input.checked = v;
    else row.input.value = v;
    if (row.slider) row.slider.value = row.scale.toSlider(v);
  }
}
