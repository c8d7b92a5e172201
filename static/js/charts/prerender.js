// Charts for the prerender engine: the backend's load (which follows traffic only
// when pages are rendered per request), latency, and how old the pages served are.
import { PALETTE, group, lineChart } from "./common.js";

// The big figures above the charts.
// Outdated views over the last 3 s: the share since the start shrinks as the run
// grows older, hiding the effect of a publish.
export const figures = ["utilization_recent", "latency_ms_recent", "staleness_s_recent", "outdated_share_recent"];

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Requests and backend renders (last 3 s)",
      yTitle: "per second",
      series: [
        { label: "Page views", value: (f) => f.metrics.requests_per_s_recent },
        { label: "Rendered for a visitor", value: (f) => f.metrics.backend_per_s_recent, color: PALETTE[1] },
      ],
    }, ctx),
    lineChart(root, {
      title: "Backend utilization (last 3 s)",
      yTitle: "share of workers busy",
      yRange: [0, 1.05],
      series: [{ label: "Utilization", value: (f) => f.metrics.utilization_recent, theory: "backend_utilization" }],
    }, ctx),
    lineChart(root, {
      title: "Page latency (last 3 s)",
      yTitle: "ms",
      series: [{ label: "Mean latency", value: (f) => f.metrics.latency_ms_recent, theory: "mean_latency_ms" }],
    }, ctx),
    lineChart(root, {
      title: "Age of the pages served (last 3 s)",
      yTitle: "seconds since rendered",
      series: [{ label: "Mean age", value: (f) => f.metrics.staleness_s_recent, color: PALETTE[2], theory: "mean_staleness_s" }],
    }, ctx),
    lineChart(root, {
      title: "Views of outdated pages (last 3 s)",
      yTitle: "share of views",
      yRange: [0, 1.05],
      series: [{ label: "Outdated", value: (f) => f.metrics.outdated_share_recent, color: PALETTE[1], theory: "outdated_share" }],
    }, ctx),
  );
}
