// Version history: ask before reverting (the form still posts without JavaScript).

for (const form of document.querySelectorAll("form.revert-form")) {
  form.addEventListener("submit", (e) => {
    if (!window.confirm(form.dataset.confirm)) e.preventDefault();
  });
}
