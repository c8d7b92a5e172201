// Charts for the queue engine: the backlog, how long users wait for an answer
// (sync) or for their job (async), throughput against arrivals, how pages learn a
// result (status polls or open push connections), and who is busy.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
// Utilization over the last 3 s, of the pool the current mode uses: the figure
// since the start would mix both modes and lag behind any change.
export const figures = ["queue_length", "response_s_recent", "wait_s_recent", "utilization_recent"];

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Jobs waiting and in service",
      yTitle: "jobs",
      series: [
        { label: "Waiting", value: (f) => f.metrics.queue_length, theory: "mean_queue_length" },
        { label: "In service", value: (f) => f.metrics.in_service },
      ],
    }, ctx),
    lineChart(root, {
      title: "Response and wait (last 3 s)",
      yTitle: "seconds",
      series: [
        { label: "Response to the user", value: (f) => f.metrics.response_s_recent, theory: "mean_response_s" },
        { label: "Wait before the work starts", value: (f) => f.metrics.wait_s_recent, theory: "mean_wait_s" },
      ],
    }, ctx),
    lineChart(root, {
      title: "Arrivals and completions (last 3 s)",
      yTitle: "per second",
      series: [
        { label: "Arrivals", value: (f) => f.metrics.arrivals_per_s_recent },
        { label: "Jobs done", value: (f) => f.metrics.done_per_s_recent, theory: "throughput_per_s" },
        { label: "Rejected or timed out", value: (f) => f.metrics.failed_per_s_recent, color: PALETTE[1] },
      ],
    }, ctx),
    lineChart(root, {
      title: "Utilization (last 3 s)",
      yTitle: "share of the pool busy",
      yRange: [0, 1.05],
      series: [{ label: "Utilization", value: (f) => f.metrics.utilization_recent, theory: "utilization" }],
    }, ctx),
    lineChart(root, {
      title: "How pages learn their job is done",
      yTitle: "requests/s or connections",
      series: [
        { label: "Status polls a second", value: (f) => f.metrics.status_requests_per_s, theory: "status_requests_per_s" },
        { label: "Open push connections", value: (f) => f.metrics.open_connections, theory: "open_connections", color: PALETTE[2] },
      ],
    }, ctx),
    barChart(root, {
      title: "Workers and web threads",
      yTitle: "count",
      categories: (f) => f.metrics.pool_names,
      values: (f) => f.metrics.pool_counts,
      colors: () => [PALETTE[1], PALETTE[2], PALETTE[1], PALETTE[2]],
    }, ctx),
  );
}
