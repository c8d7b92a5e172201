// Projector mode: large type, high contrast, thick chart lines. Applied before
// first paint from localStorage or ?projector=1, toggled by the header button or P.
(function () {
  const root = document.documentElement;
  const params = new URLSearchParams(location.search);
  let on = params.has("projector") ? params.get("projector") !== "0" : localStorage.getItem("projector") === "1";
  root.classList.toggle("projector", on);
  function set(value) {
    on = value;
    root.classList.toggle("projector", on);
    localStorage.setItem("projector", on ? "1" : "0");
    const button = document.getElementById("projector-toggle");
    if (button) button.setAttribute("aria-pressed", String(on));
    for (const panel of window.scalelabPanels || []) {
      if (panel.chartView && panel.chartView.restyle) panel.chartView.restyle();
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    const button = document.getElementById("projector-toggle");
    if (!button) return;
    button.setAttribute("aria-pressed", String(on));
    button.addEventListener("click", function () { set(!on); });
  });
})();
