// Charts for the replication engine: how far behind each server is, what that
// costs readers (stale reads, consistency violations), and what waiting for
// replicas costs writers.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["max_node_lag_ms", "stale_read_ratio_recent", "write_latency_ms_recent", "master_utilization_recent"];

// Masters in green, paused replicas in orange, the others in the first colour;
// in words and patterns too, under each server's name.
const nodeColors = (f) => (f.metrics.node_roles || []).map((role, i) => {
  if (role === "master") return PALETTE[2];
  return (f.metrics.node_paused || [])[i] ? PALETTE[1] : PALETTE[0];
});
const nodeStates = (f) => (f.metrics.node_roles || []).map((role, i) =>
  (role !== "master" && (f.metrics.node_paused || [])[i] ? "paused" : role));

export default function mount(root, ctx) {
  return group(
    barChart(root, {
      title: "Lag of each server now (age of its oldest unapplied write)",
      yTitle: "ms",
      categories: (f) => f.metrics.node_names,
      values: (f) => f.metrics.node_lag_ms,
      colors: nodeColors,
      states: nodeStates,
      patterns: { paused: "x", master: "." },
      categoryTitle: "Server",
    }, ctx),
    lineChart(root, {
      title: "Replication lag",
      yTitle: "ms",
      series: [
        { label: "Mean, commit to apply (last 3 s)", value: (f) => f.metrics.lag_ms_recent, theory: "mean_lag_ms" },
        { label: "Largest lag now", value: (f) => f.metrics.max_node_lag_ms, color: PALETTE[1] },
      ],
    }, ctx),
    lineChart(root, {
      title: "Conflicting writes between masters (last 3 s)",
      yTitle: "writes/s",
      series: [{ label: "Conflicts (last writer wins)", value: (f) => f.metrics.conflicts_per_s_recent, color: PALETTE[3] }],
    }, ctx),
    lineChart(root, {
      title: "Stale reads (last 3 s)",
      yTitle: "share of reads",
      yRange: [0, 1.02],
      series: [{ label: "Stale reads", value: (f) => f.metrics.stale_read_ratio_recent, color: PALETTE[1], theory: "stale_read_ratio" }],
    }, ctx),
    lineChart(root, {
      title: "Consistency violations (last 3 s)",
      yTitle: "reads/s",
      series: [
        { label: "Monotonic reads: an older version after a newer one", value: (f) => f.metrics.monotonic_per_s_recent, color: PALETTE[3] },
        { label: "Read-your-writes: a read-back without the user's write", value: (f) => f.metrics.ryw_per_s_recent, color: PALETTE[1] },
      ],
    }, ctx),
    lineChart(root, {
      title: "Write wait for replicas (last 3 s)",
      yTitle: "ms",
      series: [{ label: "Commit to acknowledgement", value: (f) => f.metrics.write_latency_ms_recent }],
    }, ctx),
  );
}
