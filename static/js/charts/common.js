// Chart building blocks shared by the engines' chart modules.
//
// A chart module exports `mount(root, ctx)` and returns {push(frame), reset()}.
// lineChart keeps a bounded window of points (Plotly.extendTraces with maxPoints);
// barChart redraws its bars from the latest frame. Both read colours from CSS
// custom properties so the projector profile and dark themes apply to charts too.
//
// Every chart is also told in words, for readers who cannot see it: a figure named
// by its title, a sentence of its latest values as its description, and a table of
// its recent points. Plotly's svg is hidden from screen readers, which would read
// its ticks as a string of numbers; the table carries the data instead.

import { el } from "../dom.js";
import { format } from "../values.js";

// Okabe-Ito: distinguishable with the common kinds of colour blindness.
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
const DASHES = ["solid", "dash", "dot", "dashdot", "longdash"];

function theme() {
  const css = getComputedStyle(document.documentElement);
  const get = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    fg: get("--chart-fg", "#1a1a1a"),
    bg: get("--chart-bg", "#ffffff"),
    grid: get("--chart-grid", "#d8d8d8"),
    font: Number.parseFloat(get("--chart-font-size", "13")),
    line: Number.parseFloat(get("--chart-line-width", "2.5")),
  };
}

// Plotly draws a title on one line, however narrow the chart: break titles into
// lines that fit (by an average glyph width), so that none is cut at 390 px and a
// rotated axis title never runs past the plot into the chart's title.
const GLYPH_EM = 0.58;

function wrap(text, width, size) {
  const perLine = Math.max(8, Math.floor(width / (size * GLYPH_EM)));
  const lines = [];
  for (const word of String(text || "").split(/\s+/).filter(Boolean)) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= perLine) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines;
}

function layout(spec, t, width = 0) {
  const legend = (spec.series || []).length > 1;
  const legendRows = legend ? Math.ceil(spec.series.length / 2) : 0;
  const height = (spec.height || 240) + 28 * legendRows;
  const titleSize = t.font + 3;
  // Before the chart has a width (not yet laid out), assume a phone's.
  const titleLines = wrap(spec.title, (width || 340) - 24, titleSize);
  // Plotly lifts a title of several lines above its anchor by part of a line.
  const lift = titleLines.length > 1 ? 8 : 0;
  const top = 14 + lift + Math.round(titleLines.length * titleSize * 1.3);
  const bottom = legend ? 40 + 28 * legendRows : 40;
  const yLines = wrap(spec.yTitle || "", height - top - bottom - 8, t.font);
  return {
    title: {
      text: titleLines.join("<br>"),
      font: { size: titleSize, color: t.fg },
      x: 0.02,
      xanchor: "left",
      xref: "container",
      y: 1,
      yanchor: "top",
      yref: "container",
      pad: { t: 8 + lift },
    },
    paper_bgcolor: t.bg,
    plot_bgcolor: t.bg,
    font: { color: t.fg, size: t.font },
    margin: { l: 40 + 18 * Math.max(1, yLines.length), r: 12, t: top, b: bottom },
    showlegend: legend,
    // The legend sits below the axis title, measured in the whole figure, so
    // that it never covers the axis on a narrow phone.
    legend: { orientation: "h", x: 0, xanchor: "left", y: 0, yanchor: "bottom", yref: "container" },
    xaxis: { title: { text: spec.xTitle ?? "simulated seconds" }, gridcolor: t.grid, zeroline: false, automargin: true },
    yaxis: {
      title: { text: yLines.join("<br>") },
      automargin: true,
      gridcolor: t.grid,
      rangemode: "tozero",
      ...(spec.yRange ? { range: spec.yRange, autorange: false } : {}),
    },
    autosize: true,
    height,
  };
}

// Redraw the titles when the chart's width changes enough to change their lines
// (a phone turned sideways, the projector toggled).
function rewrapOnResize(el, spec) {
  if (typeof ResizeObserver === "undefined") return;
  let width = el.clientWidth;
  new ResizeObserver(() => {
    const now = el.clientWidth;
    if (!now || Math.abs(now - width) < 8 || !el.layout) return;
    width = now;
    const look = layout(spec, theme(), now);
    window.Plotly.relayout(el, {
      "title.text": look.title.text,
      "margin.t": look.margin.t,
      "margin.l": look.margin.l,
      "yaxis.title.text": look.yaxis.title.text,
    });
  }).observe(el);
}

const CONFIG = { displayModeBar: false, responsive: true, staticPlot: false };

// The table of a line chart keeps one row a simulated second, so that 20 rows
// span 20 seconds at any speed; words are rewritten at most once a second.
export const TABLE_ROWS = 20;
const WORDS_EVERY_MS = 1000;
const PAUSE_NOTE = "The chart moves while the run runs; Pause stops it.";
const WAITING = "No data yet: press Run.";

// A value as read out: a number written for people, "none" when nothing applies.
export function spoken(value) {
  return typeof value === "number" && Number.isFinite(value) ? format(value) : "none";
}

// Return the rows after a frame at simulated time t: the newest first, one per
// simulated second, at most `limit`. A time earlier than the newest row (a reset,
// a restored snapshot) starts the table again.
export function sampleRows(rows, t, values, limit = TABLE_ROWS) {
  if (rows.length && t < rows[0].t) return [{ t, values }];
  if (rows.length && Math.floor(t) <= Math.floor(rows[0].t)) return rows;
  return [{ t, values }, ...rows].slice(0, limit);
}

// The sentence of a line chart's latest values: "At 12.0 s: Reads 512; Writes 130."
export function lineSentence(labels, t, values) {
  const parts = labels.map((label, i) => `${label} ${spoken(values[i])}`);
  return `At ${t.toFixed(1)} simulated seconds: ${parts.join("; ")}.`;
}

// The sentence of a bar chart: "disk 0 0.310, working; disk 1 0, failed."
export function barSentence(names, values, states = []) {
  if (!names.length) return "No bars yet.";
  const parts = names.map((name, i) => `${name} ${spoken(values[i])}${states[i] ? `, ${states[i]}` : ""}`);
  return `${parts.join("; ")}.`;
}

let charts = 0;

// The figure of one chart: the plot (hidden from screen readers), the sentence
// that describes it, and its data table behind a "Data table" toggle.
class ChartFigure {
  constructor(root, spec) {
    const id = `chart-figure-${++charts}`;
    this.plot = el("div", { class: "chart-plot", role: "img", "aria-label": spec.title, "aria-hidden": "true" });
    this.sentence = el("p", { class: "visually-hidden chart-summary", id: `${id}-summary` });
    this.head = el("thead");
    this.body = el("tbody");
    this.caption = el("caption");
    this.details = el("details", { class: "chart-data" },
      el("summary", {}, "Data table", el("span", { class: "visually-hidden", text: `: ${spec.title}` })),
      el("table", { class: "chart-table" }, this.caption, this.head, this.body));
    this.details.addEventListener("toggle", () => this.details.open && this.drawTable());
    root.append(el("figure", { class: "chart", "aria-label": spec.title, "aria-describedby": `${id}-summary` },
      this.plot, this.sentence, this.details));
    this.title = spec.title;
    this.words = null;
    this.last = -Infinity;
    this.timer = null;
    this.reset();
  }

  // A visible line under the plot (what the theory line is, or why there is none).
  note() {
    const p = el("p", { class: "chart-note" });
    this.plot.after(p);
    return p;
  }

  // `words()` returns {sentence, caption, columns, rows}: called at most once a
  // second, and once more after the last frame so that a pause shows the last state.
  update(words) {
    this.words = words;
    const wait = WORDS_EVERY_MS - (performance.now() - this.last);
    if (wait <= 0) this.write();
    else if (!this.timer) this.timer = setTimeout(() => this.write(), wait);
  }

  write() {
    clearTimeout(this.timer);
    this.timer = null;
    this.last = performance.now();
    if (!this.words) return;
    this.current = this.words();
    this.sentence.textContent = `${this.current.sentence} ${PAUSE_NOTE}`;
    if (this.details.open) this.drawTable();
  }

  drawTable() {
    const { caption, columns, rows } = this.current;
    this.caption.textContent = caption;
    const head = columns.map((c) => el("th", { scope: "col", text: c }));
    this.head.replaceChildren(...(head.length ? [el("tr", {}, ...head)] : []));
    this.body.replaceChildren(...rows.map(([first, ...cells]) =>
      el("tr", {}, el("th", { scope: "row", text: first }), ...cells.map((c) => el("td", { text: c })))));
  }

  reset() {
    clearTimeout(this.timer);
    this.timer = null;
    this.words = null;
    this.current = { sentence: WAITING, caption: `${this.title}: ${WAITING}`, columns: [], rows: [] };
    this.sentence.textContent = WAITING;
    this.drawTable();
  }
}

// The note under a chart with theory lines: for each series with `theory`, the
// model and its prediction, or why there is none for the current settings.
// `models` names each metric's model (the engine's declaration; a frame's
// `theory_models` names the one its settings use), `units` each metric's unit.
export function theoryNote(series, frame, models = {}, units = {}) {
  const named = frame.theory_models || {};
  return series.map((s) => {
    const gap = frame.theory_gaps && frame.theory_gaps[s.theory];
    if (gap) return `No theory line for ${s.label}: ${gap}`;
    const value = frame.theory && frame.theory[s.theory];
    if (typeof value !== "number") return "";
    const unit = units[s.theory] ? ` ${units[s.theory]}` : "";
    return `Dashed: ${s.label} by ${named[s.theory] || models[s.theory] || "theory"}, ${spoken(value)}${unit}.`;
  }).filter(Boolean).join(" ");
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

// A time series: one trace per entry of spec.series ({label, value(frame), color, dash}).
// spec.describe(frame), when given, says in words what the latest values mean.
//
// A series with `theory: METRIC` gets a dashed "theory" line beside it: the value
// closed-form theory predicts for the current settings (frame.theory[METRIC]).
// Where theory has none (no steady state), the line is absent and a note under
// the chart says why (frame.theory_gaps[METRIC]).
export function lineChart(root, spec, ctx = {}) {
  const Plotly = window.Plotly;
  const figure = new ChartFigure(root, spec);
  const plot = figure.plot;
  const windowSeconds = ctx.windowSeconds || 60;
  const maxPoints = ctx.maxPoints || 900;
  const models = (ctx.engine && ctx.engine.theory) || {};
  const units = Object.fromEntries(((ctx.engine && ctx.engine.metrics) || []).map((m) => [m.name, m.unit]));
  const theorySeries = spec.series
    .map((s, i) => ({ ...s, index: i }))
    .filter((s) => s.theory)
    .map((s) => ({
      label: `${s.label}: theory`,
      color: s.color || PALETTE[s.index % PALETTE.length],
      dash: "dash",
      theory: s.theory,
      value: (f) => (f.theory ? f.theory[s.theory] : undefined),
      thin: true,
    }));
  const allSeries = [...spec.series.map((s) => ({ ...s, theory: undefined })), ...theorySeries];
  const labels = allSeries.map((s) => s.label);
  const note = theorySeries.length ? figure.note() : null;
  let pending = null;
  let latest = null;
  let latestValues = [];
  let rows = [];
  let scaled = false;

  function traces() {
    const t = theme();
    return allSeries.map((s, i) => ({
      x: [],
      y: [],
      name: s.label,
      type: "scatter",
      mode: "lines",
      line: { color: s.color || PALETTE[i % PALETTE.length], width: s.thin ? Math.max(1.5, t.line * 0.7) : t.line,
        dash: s.dash || DASHES[i % DASHES.length] },
      hovertemplate: `%{y:.4g}<extra>${s.label}</extra>`,
    }));
  }

  // Under the chart: which model the dashed line is, or why there is none.
  function explain(frame) {
    if (!note) return;
    const text = theoryNote(spec.series.filter((s) => s.theory), frame, models, units);
    if (note.textContent !== text) note.textContent = text;
    plot.dataset.theory = theorySeries.map((s) => (frame.theory && typeof frame.theory[s.theory] === "number" ? "line" : "none")).join(" ");
  }

  // With no points Plotly would draw its default axes, from -1: start at zero.
  function draw() {
    const look = layout(spec, theme(), plot.clientWidth);
    look.xaxis.range = [0, 1];
    if (!spec.yRange) Object.assign(look.yaxis, { range: [0, 1], autorange: false });
    scaled = false;
    Plotly.newPlot(plot, traces(), look, CONFIG);
  }
  draw();
  rewrapOnResize(plot, spec);

  function flush() {
    if (!pending) return;
    const batch = pending;
    pending = null;
    Plotly.extendTraces(plot, batch, allSeries.map((_, i) => i), maxPoints);
    const lo = Math.max(0, latest.t - windowSeconds);
    const update = { "xaxis.range": [lo, Math.max(lo + 1, latest.t)] };
    if (!spec.yRange && !scaled) update["yaxis.autorange"] = true;
    scaled = true;
    Plotly.relayout(plot, update);
  }

  function words() {
    return {
      sentence: `${spec.describe ? `${spec.describe(latest)} ` : ""}${lineSentence(labels, latest.t, latestValues)}`,
      caption: `${spec.title}: one row a simulated second, the newest first.`,
      columns: ["Simulated seconds", ...labels],
      rows: rows.map((r) => [r.t.toFixed(1), ...r.values.map(spoken)]),
    };
  }

  return {
    el: plot,
    push(frame) {
      latest = frame;
      if (!pending) {
        pending = { x: allSeries.map(() => []), y: allSeries.map(() => []) };
        requestAnimationFrame(flush);
      }
      latestValues = allSeries.map((s) => finite(s.value(frame)));
      explain(frame);
      latestValues.forEach((v, i) => {
        pending.x[i].push(frame.t);
        pending.y[i].push(v);
      });
      rows = sampleRows(rows, frame.t, latestValues);
      figure.update(words);
    },
    reset() {
      pending = null;
      latest = null;
      rows = [];
      figure.reset();
      if (note) note.textContent = "";
      draw();
    },
    restyle() {
      draw();
    },
    pointCount() {
      return (plot.data || []).reduce((n, trace) => n + trace.x.length, 0);
    },
  };
}

// Bars for the entities of the latest frame (servers, shards, replicas...).
// spec.states(frame), when given, names each bar's state in words: written under
// its name and in the table, and drawn as a pattern (spec.patterns: state -> shape),
// so that no state is told by colour alone. spec.categoryTitle and spec.valueTitle
// head the table's columns (by default "Name" and the y axis title).
export function barChart(root, spec, ctx = {}) {
  const Plotly = window.Plotly;
  const figure = new ChartFigure(root, spec);
  const plot = figure.plot;
  let scheduled = false;
  let latest = null;

  function read(frame) {
    const names = frame ? (spec.categories(frame) || []).map(String) : [];
    const values = frame ? (spec.values(frame) || []).map(finite) : [];
    const states = frame && spec.states ? spec.states(frame) || [] : [];
    return { names, values, states };
  }

  function draw(frame) {
    const t = theme();
    const { names, values, states } = read(frame);
    const colors = spec.colors && frame ? spec.colors(frame) : names.map(() => PALETTE[0]);
    const marker = { color: colors };
    if (spec.patterns) {
      marker.pattern = { shape: states.map((s) => spec.patterns[s] || ""), fgcolor: t.fg, fillmode: "overlay", solidity: 0.3 };
    }
    const data = [{ type: "bar", x: names, y: values, marker, customdata: states,
      hovertemplate: states.length ? "%{x}: %{y:.4g}, %{customdata}<extra></extra>" : "%{x}: %{y:.4g}<extra></extra>" }];
    const look = layout({ ...spec, xTitle: spec.xTitle || "" }, t, plot.clientWidth);
    look.xaxis.type = "category";
    if (states.length) {
      look.xaxis.tickvals = names;
      look.xaxis.ticktext = names.map((n, i) => (states[i] ? `${n}<br>${states[i]}` : n));
    }
    // With no bars Plotly would draw its default axes, from -1: draw none.
    if (!names.length) {
      look.xaxis.showticklabels = false;
      if (!spec.yRange) Object.assign(look.yaxis, { range: [0, 1], autorange: false });
    }
    Plotly.react(plot, data, look, CONFIG);
  }
  draw(null);
  rewrapOnResize(plot, { ...spec, xTitle: spec.xTitle || "" });

  function words() {
    const { names, values, states } = read(latest);
    const withStates = states.length > 0;
    return {
      sentence: barSentence(names, values, states),
      caption: `${spec.title}: the latest values.`,
      columns: [spec.categoryTitle || "Name", spec.valueTitle || spec.yTitle || "Value", ...(withStates ? ["State"] : [])],
      rows: names.map((n, i) => [n, spoken(values[i]), ...(withStates ? [states[i] || "none"] : [])]),
    };
  }

  return {
    el: plot,
    push(frame) {
      latest = frame;
      figure.update(words);
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(() => {
          scheduled = false;
          draw(latest);
        });
      }
    },
    reset() {
      latest = null;
      figure.reset();
      draw(null);
    },
    restyle() {
      draw(latest);
    },
    pointCount() {
      return (plot.data || []).reduce((n, trace) => n + trace.x.length, 0);
    },
  };
}

// Combine several charts into one module result.
export function group(...charts) {
  return {
    charts,
    push(frame) {
      for (const c of charts) c.push(frame);
    },
    reset() {
      for (const c of charts) c.reset();
    },
    restyle() {
      for (const c of charts) c.restyle();
    },
    pointCount() {
      return charts.reduce((n, c) => n + c.pointCount(), 0);
    },
  };
}
