// Arrange lessons: drag lessons within and between modules, drag modules, or use
// the Move up / Move down buttons; Save posts the whole order as JSON.

const form = document.getElementById("arrange-form");
const list = form && form.querySelector(".arrange-modules");
const live = form && form.querySelector(".arrange-live");

const modules = () => [...list.querySelectorAll(":scope > .arrange-module")];
const lessonsOf = (module) => [...module.querySelectorAll(":scope > .arrange-lessons > .arrange-lesson")];
const titleOf = (item) => item.querySelector(".arrange-title").textContent.trim();

function layout() {
  return modules().map((module) => ({
    module: Number(module.dataset.moduleId),
    lessons: lessonsOf(module).map((lesson) => Number(lesson.dataset.lessonId)),
  }));
}

function changed(item) {
  form.dataset.dirty = "true";
  const module = item.closest(".arrange-module");
  if (item.classList.contains("arrange-module")) {
    live.textContent = `${titleOf(item)} is now module ${modules().indexOf(item) + 1} of ${modules().length}.`;
  } else {
    const position = lessonsOf(module).indexOf(item) + 1;
    live.textContent = `${titleOf(item)} is now lesson ${position} of ${titleOf(module)}.`;
  }
}

function moveModule(module, direction) {
  const all = modules();
  const target = all[all.indexOf(module) + direction];
  if (!target) {
    live.textContent = `${titleOf(module)} is already ${direction < 0 ? "first" : "last"}.`;
    return;
  }
  if (direction < 0) target.before(module);
  else target.after(module);
  changed(module);
}

function moveLesson(lesson, direction) {
  const module = lesson.closest(".arrange-module");
  const siblings = lessonsOf(module);
  const target = siblings[siblings.indexOf(lesson) + direction];
  if (target) {
    if (direction < 0) target.before(lesson);
    else target.after(lesson);
  } else {
    // At the edge of its module: into the module before or after.
    const all = modules();
    const other = all[all.indexOf(module) + direction];
    if (!other) {
      live.textContent = `${titleOf(lesson)} is already ${direction < 0 ? "first" : "last"}.`;
      return;
    }
    const lessons = other.querySelector(".arrange-lessons");
    if (direction < 0) lessons.append(lesson);
    else lessons.prepend(lesson);
  }
  changed(lesson);
}

if (form) {
  form.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-move]");
    if (!button) return;
    const direction = button.dataset.move === "up" ? -1 : 1;
    const item = button.closest(".arrange-lesson, .arrange-module");
    if (item.classList.contains("arrange-lesson")) moveLesson(item, direction);
    else moveModule(item, direction);
    button.focus();
  });

  let dragged = null;
  form.addEventListener("dragstart", (e) => {
    const handle = e.target.closest(".arrange-handle");
    if (!handle) return;
    dragged = handle.closest(".arrange-lesson, .arrange-module");
    dragged.classList.add("is-dragged");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", titleOf(dragged));
  });
  form.addEventListener("dragover", (e) => {
    if (!dragged) return;
    if (dragged.classList.contains("arrange-lesson")) {
      const over = e.target.closest(".arrange-lesson");
      if (over && over !== dragged) {
        e.preventDefault();
        const box = over.getBoundingClientRect();
        if (e.clientY < box.top + box.height / 2) over.before(dragged);
        else over.after(dragged);
        return;
      }
      const module = e.target.closest(".arrange-module");
      if (module && !over) {
        // Over a module's heading or its empty list: drop at the end of it.
        e.preventDefault();
        const lessons = module.querySelector(".arrange-lessons");
        if (dragged.parentElement !== lessons) lessons.append(dragged);
      }
      return;
    }
    const over = e.target.closest(".arrange-module");
    if (over && over !== dragged) {
      e.preventDefault();
      const box = over.getBoundingClientRect();
      if (e.clientY < box.top + box.height / 2) over.before(dragged);
      else over.after(dragged);
    }
  });
  form.addEventListener("drop", (e) => {
    if (dragged) e.preventDefault();
  });
  form.addEventListener("dragend", () => {
    if (!dragged) return;
    dragged.classList.remove("is-dragged");
    changed(dragged);
    dragged = null;
  });

  form.addEventListener("submit", () => {
    document.getElementById("arrange-layout").value = JSON.stringify(layout());
  });
}
