// Chart building blocks shared by the engines' chart modules.
//
// A chart module exports `mount(root, ctx)` and returns {push(frame), reset()}.
// lineChart keeps a bounded window of points (Plotly.extendTraces with maxPoints);
// barChart redraws its bars from the latest frame. Both read colours from CSS
// custom properties so the projector profile and dark themes apply to charts too.

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

function host(root, spec) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  const plot = document.createElement("div");
  plot.className = "chart-plot";
  plot.setAttribute("role", "img");
  plot.setAttribute("aria-label", spec.title);
  figure.append(plot);
  root.append(figure);
  return plot;
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

// A time series: one trace per entry of spec.series ({label, value(frame), color, dash}).
export function lineChart(root, spec, ctx = {}) {
  const Plotly = window.Plotly;
  const el = host(root, spec);
  const windowSeconds = ctx.windowSeconds || 60;
  const maxPoints = ctx.maxPoints || 900;
  let pending = null;
  let latest = null;

  function traces() {
    const t = theme();
    return spec.series.map((s, i) => ({
      x: [],
      y: [],
      name: s.label,
      type: "scatter",
      mode: "lines",
      line: { color: s.color || PALETTE[i % PALETTE.length], width: t.line, dash: s.dash || DASHES[i % DASHES.length] },
      hovertemplate: `%{y:.4g}<extra>${s.label}</extra>`,
    }));
  }

  function draw() {
    Plotly.newPlot(el, traces(), layout(spec, theme(), el.clientWidth), CONFIG);
  }
  draw();
  rewrapOnResize(el, spec);

  function flush() {
    if (!pending) return;
    const batch = pending;
    pending = null;
    Plotly.extendTraces(el, batch, spec.series.map((_, i) => i), maxPoints);
    const lo = Math.max(0, latest.t - windowSeconds);
    Plotly.relayout(el, { "xaxis.range": [lo, Math.max(lo + 1, latest.t)] });
  }

  return {
    el,
    push(frame) {
      latest = frame;
      if (!pending) {
        pending = { x: spec.series.map(() => []), y: spec.series.map(() => []) };
        requestAnimationFrame(flush);
      }
      spec.series.forEach((s, i) => {
        pending.x[i].push(frame.t);
        pending.y[i].push(finite(s.value(frame)));
      });
    },
    reset() {
      pending = null;
      latest = null;
      draw();
    },
    restyle() {
      draw();
    },
    pointCount() {
      return (el.data || []).reduce((n, trace) => n + trace.x.length, 0);
    },
  };
}

// Bars for the entities of the latest frame (servers, shards, replicas...).
export function barChart(root, spec, ctx = {}) {
  const Plotly = window.Plotly;
  const el = host(root, spec);
  let scheduled = false;
  let latest = null;

  function draw(frame) {
    const t = theme();
    const names = frame ? spec.categories(frame) || [] : [];
    const values = frame ? (spec.values(frame) || []).map(finite) : [];
    const colors = spec.colors && frame ? spec.colors(frame) : names.map(() => PALETTE[0]);
    const data = [{ type: "bar", x: names.map(String), y: values, marker: { color: colors },
      hovertemplate: "%{x}: %{y:.4g}<extra></extra>" }];
    const look = layout({ ...spec, xTitle: spec.xTitle || "" }, t, el.clientWidth);
    look.xaxis.type = "category";
    Plotly.react(el, data, look, CONFIG);
  }
  draw(null);
  rewrapOnResize(el, { ...spec, xTitle: spec.xTitle || "" });

  return {
    el,
    push(frame) {
      latest = frame;
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
      draw(null);
    },
    restyle() {
      draw(latest);
    },
    pointCount() {
      return (el.data || []).reduce((n, trace) => n + trace.x.length, 0);
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
