// Charts for the balancer engine: how the strategy spreads work, and what it costs.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["latency_s_recent", "dropped_per_s_recent", "imbalance_recent", "clients_on_dead_server"];

// Dead servers stand out in orange, and say "down" under their (empty) bar.
const upColors = (f) => (f.metrics.server_up || []).map((up) => (up ? PALETTE[0] : PALETTE[1]));
const upStates = (f) => (f.metrics.server_up || []).map((up) => (up ? "up" : "down"));

export default function mount(root, ctx) {
  return group(
    barChart(root, {
      title: "Requests in each server now",
      yTitle: "requests (queued + in service)",
      categories: (f) => f.metrics.server_names,
      values: (f) => f.metrics.server_load,
      colors: upColors,
      states: upStates,
      patterns: { down: "x" },
      categoryTitle: "Server",
    }, ctx),
    lineChart(root, {
      title: "Mean latency (last 3 s)",
      yTitle: "seconds",
      series: [{ label: "Latency", value: (f) => f.metrics.latency_s_recent, theory: "mean_latency_s" }],
    }, ctx),
    lineChart(root, {
      title: "Requests per second",
      yTitle: "req/s",
      series: [
        { label: "Completed", value: (f) => f.metrics.completed_per_s_recent, theory: "throughput_per_s" },
        { label: "Dropped", value: (f) => f.metrics.dropped_per_s_recent, color: PALETTE[1] },
      ],
    }, ctx),
    lineChart(root, {
      title: "Imbalance among live servers: busiest over the mean (last 3 s)",
      yTitle: "ratio (1 = even)",
      series: [{ label: "Imbalance", value: (f) => f.metrics.imbalance_recent }],
    }, ctx),
  );
}
