// A step's actions as rows: run a command or change settings, picked from the
// lesson's engine, with typed inputs. Without this script the textarea of the
// same actions as JSON is posted instead (see lessons/widgets.py for the names).

import { el } from "./dom.js";

const KINDS = [
  ["command", "Run a command"],
  ["set", "Change settings"],
];

// The engines' declarations, fetched once -------------------------------------------

let declarations = null;

async function engines(url) {
  if (!declarations) {
    declarations = fetch(url, { credentials: "same-origin" })
      .then((response) => response.json())
      .then((body) => Object.fromEntries(body.engines.map((e) => [e.kind, e])));
  }
  return declarations;
}

function engineKind() {
  const select = document.getElementById("id_engine");
  return select ? select.value : "";
}

// Inputs typed by a declared parameter ----------------------------------------------

function option(value, text, selected) {
  return el("option", { value, text, selected });
}

function nameSelect(items, current, part, engine) {
  const select = el("select", { dataset: { part } });
  select.append(option("", "— choose —", !current));
  for (const item of items) {
    const unit = item.unit ? ` (${item.unit})` : "";
    select.append(option(item.name, `${item.label}${unit} · ${item.name}`, item.name === current));
  }
  if (current && !items.some((item) => item.name === current)) {
    const where = engine ? engine.kind : "the chosen engine";
    select.append(option(current, `${current} (not in ${where})`, true));
  }
  return select;
}

function valueInput(param, value, part, extra = {}) {
  const data = { part, ...extra };
  if (!param) return [el("input", { type: "text", value: value ?? "", dataset: data })];
  const given = value === undefined || value === null || value === "" ? param.default : value;
  if (param.type === "bool") {
    const on = given === true || String(given).toLowerCase() === "true";
    // Unchecked boxes post nothing: the hidden "false" goes first, a checked box wins.
    return [
      el("input", { type: "hidden", value: "false", dataset: data }),
      el("input", { type: "checkbox", value: "true", checked: on, dataset: data }),
    ];
  }
  if (param.type === "choice") {
    const select = el("select", { dataset: data });
    for (const c of param.choices) select.append(option(c, c, String(given) === c));
    return [select];
  }
  return [
    el("input", {
      type: "number",
      value: given,
      min: param.min,
      max: param.max,
      step: param.step ?? (param.type === "int" ? 1 : "any"),
      dataset: data,
      class: "vIntegerField",
    }),
  ];
}

function labelled(text, help, ...inputs) {
  return el(
    "label",
    { class: "action-input", title: help || null },
    el("span", { class: "action-label", text }),
    ...inputs
  );
}

function paramLabel(param, name) {
  if (!param) return name;
  return param.label + (param.unit ? ` (${param.unit})` : "");
}

// One row: one action ----------------------------------------------------------------

function settingLine(engine, name, value) {
  const params = engine ? engine.params : [];
  const param = params.find((p) => p.name === name);
  const line = el("div", { class: "action-setting" });
  line.append(labelled("Setting", null, nameSelect(params, name, "setting-name", engine)));
  const inputs = valueInput(param, value, "setting-value");
  line.append(
    labelled(
      param ? `Value${param.unit ? ` (${param.unit})` : ""}` : "Value",
      param ? `Allowed: ${param.allowed}.` : null,
      ...inputs
    )
  );
  if (param) line.append(el("span", { class: "action-allowed help", text: `Allowed: ${param.allowed}.` }));
  line.append(el("button", { type: "button", class: "button action-tool", dataset: { act: "remove-setting" }, text: "Remove setting" }));
  return line;
}

function commandBody(engine, name, args) {
  const commands = engine ? engine.commands : [];
  const command = commands.find((c) => c.name === name);
  const body = el("div", { class: "action-body" });
  body.append(labelled("Command", command ? command.help : null, nameSelect(commands, name, "command", engine)));
  const argsBox = el("div", { class: "action-args" });
  if (command) {
    if (command.help) argsBox.append(el("p", { class: "help action-help", text: command.help }));
    for (const arg of command.args) {
      argsBox.append(
        labelled(paramLabel(arg, arg.name), `Allowed: ${arg.allowed}.`, ...valueInput(arg, args[arg.name], "arg", { arg: arg.name }))
      );
    }
    if (!command.args.length) argsBox.append(el("span", { class: "help", text: "No arguments." }));
  } else {
    // Arguments an unknown command was given stay, so validation can name them.
    for (const [arg, value] of Object.entries(args)) {
      argsBox.append(labelled(arg, null, ...valueInput(null, value, "arg", { arg })));
    }
  }
  body.append(argsBox);
  return body;
}

function settingsBody(engine, values) {
  const body = el("div", { class: "action-body" });
  const list = el("div", { class: "action-settings" });
  const entries = Object.entries(values);
  if (!entries.length) entries.push(["", ""]);
  for (const [name, value] of entries) list.append(settingLine(engine, name, value));
  body.append(list);
  body.append(el("button", { type: "button", class: "button action-tool", dataset: { act: "add-setting" }, text: "Add a setting" }));
  return body;
}

function actionRow(engine, action) {
  const kind = "command" in action ? "command" : "set" in action ? "set" : "command";
  const row = el("li", { class: "action-row", role: "group", dataset: { kind } });
  const head = el("div", { class: "action-head" });
  head.append(el("span", { class: "action-number" }));
  const kindSelect = el("select", { dataset: { part: "kind" } });
  for (const [value, text] of KINDS) kindSelect.append(option(value, text, value === kind));
  head.append(labelled("Action", null, kindSelect));
  head.append(
    labelled(
      "After (simulated s)",
      "Wait this long after the button is pressed; empty for at once.",
      el("input", { type: "number", min: 0, max: 3600, step: "any", value: action.after ?? "", dataset: { part: "after" }, class: "vIntegerField", placeholder: "at once" })
    )
  );
  head.append(
    el(
      "span",
      { class: "action-tools" },
      el("button", { type: "button", class: "button action-tool", dataset: { act: "up" }, text: "Move up" }),
      el("button", { type: "button", class: "button action-tool", dataset: { act: "down" }, text: "Move down" }),
      el("button", { type: "button", class: "button action-tool", dataset: { act: "remove" }, text: "Remove action" })
    )
  );
  row.append(head);
  row.append(kind === "command" ? commandBody(engine, action.command, action.args || {}) : settingsBody(engine, action.set || {}));
  return row;
}

// Reading the rows back, and naming their inputs ---------------------------------------

function inputValue(node) {
  const box = node.parentElement.querySelector("input[type=checkbox]");
  if (box && (node.type === "hidden" || node.type === "checkbox")) return box.checked;
  return node.value;
}

function readRow(row) {
  const action = {};
  const get = (part, scope = row) => scope.querySelector(`[data-part='${part}']`);
  if (row.dataset.kind === "command") {
    action.command = get("command").value;
    action.args = {};
    for (const node of row.querySelectorAll("[data-part='arg']")) action.args[node.dataset.arg] = inputValue(node);
  } else {
    action.set = {};
    for (const line of row.querySelectorAll(".action-setting")) {
      const value = get("setting-value", line);
      action.set[get("setting-name", line).value] = value ? inputValue(value) : "";
    }
  }
  const after = get("after").value.trim();
  if (after) action.after = after;
  return action;
}

function rows(editor) {
  return [...editor.querySelectorAll(".action-row")];
}

function rename(editor) {
  const base = editor.querySelector("textarea").name;
  const all = rows(editor);
  editor.querySelector("input.actions-count").name = `${base}-rows`;
  editor.querySelector("input.actions-count").value = String(all.length);
  all.forEach((row, index) => {
    const prefix = `${base}-${index}-`;
    row.querySelector(".action-number").textContent = `${index + 1}.`;
    row.setAttribute("aria-label", `Action ${index + 1} of ${all.length}`);
    for (const node of row.querySelectorAll("[data-part]")) {
      const part = node.dataset.part;
      let name = prefix + part;
      if (part === "arg") name = `${prefix}arg-${node.dataset.arg}`;
      if (part === "setting-name" || part === "setting-value") {
        const lines = [...row.querySelectorAll(".action-setting")];
        const line = lines.indexOf(node.closest(".action-setting"));
        name = `${prefix}set-${line}-${part === "setting-name" ? "name" : "value"}`;
      }
      node.name = name;
      if (node.type !== "hidden") node.id = `id_${name}`;
    }
    for (const button of row.querySelectorAll(".action-tools .action-tool")) {
      button.setAttribute("aria-label", `${button.textContent}: action ${index + 1}`);
    }
  });
  editor.querySelector(".actions-empty").hidden = all.length > 0;
}

// Errors the server found, beside the row and input at fault -------------------------------

function showErrors(editor, errors) {
  for (const { row: index, field, message } of errors) {
    const row = rows(editor)[index];
    if (!row) continue;
    let target = null;
    if (field === "after") target = row.querySelector("[data-part='after']");
    else if (field === "command") target = row.querySelector("[data-part='command']");
    else if (field.startsWith("arg:")) target = row.querySelector(`[data-part='arg'][data-arg='${CSS.escape(field.slice(4))}']:not([type=hidden])`);
    else if (field.startsWith("set:")) {
      const name = field.slice(4);
      const line = [...row.querySelectorAll(".action-setting")].find((l) => l.querySelector("[data-part='setting-name']").value === name);
      target = line && line.querySelector("[data-part='setting-value']:not([type=hidden])");
    }
    const id = `${editor.querySelector("textarea").id}-error-${index}-${(field || "row").replace(/[^\w-]/g, "-")}`;
    const note = el("p", { class: "action-error", id, text: message });
    if (target) {
      target.setAttribute("aria-invalid", "true");
      target.setAttribute("aria-describedby", id);
      target.closest("label").after(note);
    } else {
      row.querySelector(".action-head").after(note);
    }
    row.classList.add("has-error");
  }
}

// The editor -------------------------------------------------------------------------

function draw(editor, engine, actions, errors = []) {
  const list = editor.querySelector(".action-rows");
  editor.querySelector(".actions-no-engine").hidden = Boolean(engine);
  list.replaceChildren(...actions.map((action) => actionRow(engine, action)));
  rename(editor);
  showErrors(editor, errors);
}

function changed(editor, text) {
  rename(editor);
  editor.querySelector(".actions-live").textContent = text || "";
  editor.closest("form").dispatchEvent(new Event("input"));
}

async function enhance(editor) {
  if (editor.dataset.enhanced || editor.closest(".empty-form")) return;
  const textarea = editor.querySelector("textarea");
  const state = JSON.parse(document.getElementById(`${textarea.id}-state`).textContent);
  if (state.actions === null) {
    // Text that is not a JSON list cannot become rows without losing it.
    editor.append(el("p", { class: "help", text: "Fix the JSON above to edit these actions as rows." }));
    return;
  }
  editor.dataset.enhanced = "true";
  textarea.hidden = true;
  textarea.disabled = true;
  editor.querySelector(".actions-text-help").hidden = true;
  editor.append(
    el("input", { type: "hidden", class: "actions-count" }),
    el("p", { class: "help actions-empty", text: "No actions: the step's button only moves on." }),
    el("p", { class: "help actions-no-engine", text: "Choose the lesson's engine (under Simulation) to pick from its commands and settings." }),
    el("ol", { class: "action-rows" }),
    el("button", { type: "button", class: "button action-add", dataset: { act: "add" }, text: "Add an action" }),
    el("p", { class: "actions-live visually-hidden", role: "status", "aria-live": "polite" })
  );
  // The field's label names the rows, now that its textarea is gone.
  const label = document.querySelector(`label[for='${CSS.escape(textarea.id)}']`);
  if (label) {
    label.id ||= `${textarea.id}-label`;
    editor.querySelector(".action-rows").setAttribute("aria-labelledby", label.id);
  }
  const engine = (await engines(editor.dataset.enginesUrl))[engineKind()];
  draw(editor, engine, state.actions, state.errors);
}

async function currentEngine(editor) {
  return (await engines(editor.dataset.enginesUrl))[engineKind()];
}

async function act(button) {
  const editor = button.closest(".actions-editor");
  const row = button.closest(".action-row");
  const engine = await currentEngine(editor);
  const what = button.dataset.act;
  const list = editor.querySelector(".action-rows");
  if (what === "add") {
    const added = actionRow(engine, { command: "", args: {} });
    list.append(added);
    changed(editor, `Added action ${rows(editor).length}.`);
    added.querySelector("[data-part='kind']").focus();
  } else if (what === "remove") {
    const all = rows(editor);
    const index = all.indexOf(row);
    row.remove();
    const next = all[index + 1] || all[index - 1];
    changed(editor, `Removed action ${index + 1}.`);
    (next ? next.querySelector("[data-part='kind']") : editor.querySelector(".action-add")).focus();
  } else if (what === "up" || what === "down") {
    const all = rows(editor);
    const index = all.indexOf(row);
    const target = all[index + (what === "up" ? -1 : 1)];
    if (!target) return;
    if (what === "up") target.before(row);
    else target.after(row);
    changed(editor, `Moved action to position ${rows(editor).indexOf(row) + 1} of ${all.length}.`);
    button.focus();
  } else if (what === "add-setting") {
    const line = settingLine(engine, "", "");
    row.querySelector(".action-settings").append(line);
    changed(editor, "Added a setting.");
    line.querySelector("[data-part='setting-name']").focus();
  } else if (what === "remove-setting") {
    const line = button.closest(".action-setting");
    const lines = [...row.querySelectorAll(".action-setting")];
    const next = lines[lines.indexOf(line) + 1] || lines[lines.indexOf(line) - 1];
    line.remove();
    changed(editor, "Removed a setting.");
    (next ? next.querySelector("[data-part='setting-name']") : row.querySelector("[data-act='add-setting']")).focus();
  }
}

// A new kind, command or setting name redraws what follows it, keeping what fits.
async function choose(select) {
  const editor = select.closest(".actions-editor");
  const row = select.closest(".action-row");
  const engine = await currentEngine(editor);
  const part = select.dataset.part;
  if (part === "kind") {
    const after = row.querySelector("[data-part='after']").value;
    const action = select.value === "set" ? { set: {} } : { command: "", args: {} };
    if (after) action.after = after;
    const fresh = actionRow(engine, action);
    row.replaceWith(fresh);
    changed(editor);
    fresh.querySelector("[data-part='kind']").focus();
  } else if (part === "command") {
    const fresh = actionRow(engine, { ...readRow(row), args: {} });
    row.replaceWith(fresh);
    changed(editor);
    fresh.querySelector("[data-part='command']").focus();
  } else if (part === "setting-name") {
    const line = select.closest(".action-setting");
    const fresh = settingLine(engine, select.value, "");
    line.replaceWith(fresh);
    changed(editor);
    fresh.querySelector("[data-part='setting-name']").focus();
  }
}

async function redrawAll() {
  for (const editor of document.querySelectorAll(".actions-editor[data-enhanced]")) {
    const engine = await currentEngine(editor);
    draw(editor, engine, rows(editor).map(readRow));
  }
}

document.addEventListener("click", (e) => {
  const button = e.target.closest(".actions-editor [data-act]");
  if (!button) return;
  e.preventDefault();
  act(button);
});
document.addEventListener("change", (e) => {
  if (e.target.id === "id_engine") redrawAll();
  else if (e.target.matches(".actions-editor select[data-part]")) choose(e.target);
});
document.addEventListener("formset:added", (e) => {
  for (const editor of e.target.querySelectorAll(".actions-editor")) enhance(editor);
});
for (const editor of document.querySelectorAll(".actions-editor")) enhance(editor);
