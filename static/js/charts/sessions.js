// Charts for the sessions engine: where sessions live and what failures cost users.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["forced_logouts_per_s_recent", "lost_carts", "split_carts", "latency_ms_recent"];

// Dead servers stand out in orange, and say "down" under their (empty) bar.
const upColors = (f) => (f.metrics.server_up || []).map((up) => (up ? PALETTE[0] : PALETTE[1]));
const upStates = (f) => (f.metrics.server_up || []).map((up) => (up ? "up" : "down"));

export default function mount(root, ctx) {
  return group(
    barChart(root, {
      title: "Sessions in each server's memory",
      yTitle: "sessions",
      categories: (f) => f.metrics.server_names,
      values: (f) => f.metrics.server_sessions,
      colors: upColors,
      states: upStates,
      patterns: { down: "x" },
      categoryTitle: "Server",
    }, ctx),
    lineChart(root, {
      title: "Forced logouts per second (last 3 s)",
      yTitle: "logouts/s",
      series: [{ label: "Forced logouts", value: (f) => f.metrics.forced_logouts_per_s_recent, theory: "forced_logouts_per_s_recent" }],
    }, ctx),
    lineChart(root, {
      title: "Carts lost and split (running total)",
      yTitle: "carts",
      series: [
        // Only a user's live cart counts as lost: not one already split off or
        // left behind by a change of store, nor an expired one.
        { label: "Live carts lost with a server", value: (f) => f.metrics.lost_carts, color: PALETTE[1] },
        { label: "Split across servers", value: (f) => f.metrics.split_carts, color: PALETTE[4] },
      ],
    }, ctx),
    lineChart(root, {
      title: "Mean latency (last 3 s)",
      yTitle: "ms",
      series: [{ label: "Latency", value: (f) => f.metrics.latency_ms_recent, theory: "mean_latency_ms" }],
    }, ctx),
    lineChart(root, {
      title: "Requests per second (last 3 s)",
      yTitle: "req/s",
      series: [{ label: "Requests", value: (f) => f.metrics.requests_per_s_recent, theory: "requests_per_s_recent" }],
    }, ctx),
  );
}
