// Charts for the whole stack: the response time against the Jackson network's sum,
// each layer's utilisation (the highest is the bottleneck), where the time goes,
// and what each layer costs a month.
import { PALETTE, barChart, group, lineChart } from "./common.js";

export const figures = ["rps", "response_ms", "bottleneck", "cost_month"];

const LAYERS = [
  ["cdn", "CDN"],
  ["lb", "Balancer"],
  ["app", "App servers"],
  ["session", "Session store"],
  ["cache", "Cache"],
  ["db", "Database"],
  ["queue", "Job workers"],
];

// The layers this frame's setup has (the engine reports all seven, absent ones at 0).
function present(f) {
  const layers = f.picture && f.picture.layers;
  if (!layers) return LAYERS;
  const on = new Set(layers.filter((l) => l.on).map((l) => l.name));
  return LAYERS.filter(([name]) => on.has(name));
}

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Response time (last 5 s)",
      yTitle: "ms",
      series: [
        { label: "Mean", value: (f) => f.metrics.response_ms, theory: "response_ms" },
        { label: "95th percentile", value: (f) => f.metrics.response_p95_ms, color: PALETTE[2] },
      ],
    }, ctx),
    lineChart(root, {
      title: "Utilisation of each layer",
      yTitle: "share busy",
      yRange: [0, 1.05],
      series: LAYERS.filter(([name]) => name !== "cdn").map(([name, label], i) => ({
        label,
        value: (f) => f.metrics[`util_${name}`],
        color: PALETTE[i % PALETTE.length],
      })),
    }, ctx),
    lineChart(root, {
      title: "Requests and errors a second",
      yTitle: "per second",
      series: [
        { label: "Requests", value: (f) => f.metrics.rps },
        { label: "Errors", value: (f) => f.metrics.errors_per_s, color: PALETTE[1] },
      ],
    }, ctx),
    barChart(root, {
      title: "Where the response time goes",
      yTitle: "ms of the mean response",
      categories: (f) => present(f).map(([, label]) => label),
      values: (f) => present(f).map(([name]) => f.metrics[`share_ms_${name}`]),
    }, ctx),
    barChart(root, {
      title: "Cost a month of each layer",
      yTitle: "a month",
      categories: (f) => present(f).map(([, label]) => label),
      values: (f) => present(f).map(([name]) => f.metrics[`cost_${name}`]),
      colors: (f) => present(f).map(() => PALETTE[2]),
    }, ctx),
  );
}
