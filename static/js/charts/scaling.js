// Charts for the scaling engine: capacity against growing traffic, and what it costs.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["capacity_rps", "cost_per_hour", "cost_per_1000_rps", "dropped_rps_recent"];

// Servers that are not serving (booting, upgrading, down) stand out in orange.
const upColors = (f) => (f.metrics.server_state || []).map((s) => (s === "up" ? PALETTE[0] : PALETTE[1]));

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Capacity and traffic",
      yTitle: "req/s",
      series: [
        { label: "Capacity", value: (f) => f.metrics.capacity_rps },
        { label: "Traffic (last 3 s)", value: (f) => f.metrics.arrival_rps_recent, color: PALETTE[4] },
        { label: "Dropped (last 3 s)", value: (f) => f.metrics.dropped_rps_recent, color: PALETTE[1], theory: "dropped_rps_recent" },
      ],
    }, ctx),
    lineChart(root, {
      title: "Cost of the servers",
      yTitle: "$ per hour",
      series: [
        { label: "Cost", value: (f) => f.metrics.cost_per_hour },
        {
          label: "Price of 1000 req/s of capacity",
          value: (f) => f.metrics.cost_per_1000_rps,
          color: PALETTE[3],
          dash: "dash",
        },
      ],
    }, ctx),
    lineChart(root, {
      title: "Utilisation (last 3 s)",
      yTitle: "share of workers busy",
      yRange: [0, 1.02],
      series: [{ label: "Utilisation", value: (f) => f.metrics.utilization_recent, theory: "utilization_recent" }],
    }, ctx),
    barChart(root, {
      title: "Workers busy in each server now",
      yTitle: "share of workers",
      yRange: [0, 1.02],
      categories: (f) => f.metrics.server_names,
      values: (f) => f.metrics.server_utilization,
      colors: upColors,
      states: (f) => f.metrics.server_state || [],
      patterns: { booting: "/", down: "x", upgrading: "/", off: "x" },
      categoryTitle: "Server",
    }, ctx),
  );
}
