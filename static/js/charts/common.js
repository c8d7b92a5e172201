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

function layout(spec, t) {
  const legend = (spec.series || []).length > 1;
  return {
    title: { text: spec.title, font: { size: t.font + 3, color: t.fg }, x: 0.02, xanchor: "left" },
    paper_bgcolor: t.bg,
    plot_bgcolor: t.bg,
    font: { color: t.fg, size: t.font },
    margin: { l: 64, r: 12, t: 40, b: legend ? 40 + 28 * Math.ceil(spec.series.length / 2) : 40 },
    showlegend: legend,
    // The legend sits below the axis title, measured in the whole figure, so
    // that it never covers the axis on a narrow phone.
    legend: { orientation: "h", x: 0, xanchor: "left", y: 0, yanchor: "bottom", yref: "container" },
    xaxis: { title: { text: spec.xTitle ?? "simulated seconds" }, gridcolor: t.grid, zeroline: false, automargin: true },
    yaxis: {
      title: { text: spec.yTitle || "" },
      automargin: true,
      gridcolor: t.grid,
      rangemode: "tozero",
      ...(spec.yRange ? { range: spec.yRange, autorange: false } : {}),
    },
    autosize: true,
    height: (spec.height || 240) + (legend ? 28 * Math.ceil(spec.series.length / 2) : 0),
  };
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
    Plotly.newPlot(el, traces(), layout(spec, theme()), CONFIG);
  }
  draw();

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
    const look = layout({ ...spec, xTitle: spec.xTitle || "" }, t);
    look.xaxis.type = "category";
    Plotly.react(el, data, look, CONFIG);
  }
  draw(null);

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
