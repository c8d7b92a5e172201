// The hit-ratio curve: a background job with a progress bar, then a chart and a table.
import { PALETTE } from "./charts/common.js";

const root = document.getElementById("curve");
if (root) {
  const params = JSON.parse(document.getElementById("curve-params").textContent);
  const form = root.querySelector(".curve-form");
  const status = document.getElementById("curve-status");
  const bar = document.getElementById("curve-progress");
  const error = document.getElementById("curve-error");
  const go = document.getElementById("curve-go");
  const inputs = {};
  for (const p of params) {
    const id = `curve-${p.name}`;
    const input = document.createElement("input");
    Object.assign(input, { type: "number", id, name: p.name, min: p.min, max: p.max, value: p.default,
      step: p.type === "int" ? 1 : "any" });
    input.setAttribute("aria-describedby", `${id}-help`);
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = p.unit ? `${p.label} (${p.unit})` : p.label;
    const help = document.createElement("small");
    help.className = "help";
    help.id = `${id}-help`;
    help.textContent = `${p.help} Allowed: ${p.allowed}.`;
    const row = document.createElement("div");
    row.className = "param";
    row.append(label, input, help);
    form.append(row);
    inputs[p.name] = input;
  }

  const csrf = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  const show = (message) => { error.hidden = !message; error.textContent = message || ""; };

  async function poll(id) {
    for (;;) {
      const response = await fetch(`/api/curves/${id}/`);
      const job = await response.json();
      bar.value = job.progress;
      status.textContent = job.status === "done" ? "Done." : `Computing: ${Math.round(job.progress * 100)}% of the reads processed.`;
      if (job.status === "done") return job;
      if (job.status === "failed") throw new Error(job.error || "the job failed");
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  function draw(job) {
    const { sizes, hit_ratios: ratios, che } = job.result;
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue("--chart-fg").trim() || "#000";
    const bg = css.getPropertyValue("--chart-bg").trim() || "#fff";
    const width = Number(css.getPropertyValue("--chart-line-width")) || 2.5;
    const traces = [{ x: sizes, y: ratios, name: "One pass (stack distances)", mode: "lines+markers",
      line: { color: PALETTE[0], width } }];
    if (che) traces.push({ x: sizes, y: che, name: "Che's approximation", mode: "lines", line: { color: PALETTE[1], width, dash: "dash" } });
    window.Plotly.react("curve-plot", traces, {
      paper_bgcolor: bg, plot_bgcolor: bg, font: { color: fg }, height: 320, margin: { l: 56, r: 12, t: 20, b: 50 },
      xaxis: { type: "log", title: { text: "cache size (entries, log scale)" } },
      yaxis: { title: { text: "hit ratio" }, range: [0, 1.02] }, legend: { orientation: "h", y: -0.3 },
    }, { displayModeBar: false, responsive: true });
    const table = document.getElementById("curve-table");
    table.tBodies[0].replaceChildren(...sizes.map((s, i) => {
      const tr = document.createElement("tr");
      for (const v of [s.toLocaleString("en"), ratios[i].toFixed(4), che ? che[i].toFixed(4) : "–"]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }));
    table.hidden = false;
    root.dataset.done = "true";
  }

  go.addEventListener("click", async () => {
    show("");
    const body = {};
    for (const [name, input] of Object.entries(inputs)) body[name] = Number(input.value);
    go.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    try {
      const response = await fetch("/api/curves/", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": decodeURIComponent(csrf()) }, body: JSON.stringify(body) });
      const job = await response.json();
      if (!response.ok) {
        const [field, message] = Object.entries(job.errors)[0];
        show(`${field}: ${message}`);
        status.textContent = "Not started.";
        return;
      }
      draw(await poll(job.id));
    } catch (err) {
      show(err.message);
    } finally {
      go.disabled = false;
    }
  });
}
