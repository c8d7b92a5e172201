// Charts for the provisioning engine: how fast new instances arrive, and what code they run.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["time_to_capacity_s", "instances", "version_drift", "dropped_rps_recent"];

// Instances off the current release stand out in orange; booting ones are grey;
// in words and patterns too, under each instance's name.
const versionColors = (f) =>
  (f.metrics.instance_state || []).map((s, i) => {
    if (s === "booting") return "#999999";
    return f.metrics.instance_drift[i] ? PALETTE[1] : PALETTE[0];
  });
const versionStates = (f) =>
  (f.metrics.instance_state || []).map((s, i) => {
    if (s !== "in service") return s;
    return f.metrics.instance_drift[i] ? "not the release" : "the release";
  });

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Capacity in service and traffic",
      yTitle: "req/s",
      series: [
        { label: "Capacity", value: (f) => f.metrics.capacity_rps },
        { label: "Traffic (last 3 s)", value: (f) => f.metrics.arrival_rps_recent, color: PALETTE[4] },
        { label: "Dropped (last 3 s)", value: (f) => f.metrics.dropped_rps_recent, color: PALETTE[1] },
      ],
    }, ctx),
    lineChart(root, {
      title: "Instances",
      yTitle: "instances",
      series: [
        { label: "In service", value: (f) => f.metrics.instances },
        { label: "Booting", value: (f) => f.metrics.instances_booting, color: PALETTE[5], dash: "dash" },
        { label: "Off the release", value: (f) => f.metrics.version_drift, color: PALETTE[1], dash: "dot" },
      ],
    }, ctx),
    lineChart(root, {
      title: "CPU at the last check",
      yTitle: "share busy",
      series: [{ label: "CPU", value: (f) => f.metrics.cpu, theory: "cpu" }],
    }, ctx),
    lineChart(root, {
      title: "Time to capacity after the last spike",
      yTitle: "s",
      series: [{ label: "Time to capacity", value: (f) => f.metrics.time_to_capacity_s, theory: "time_to_capacity_s" }],
    }, ctx),
    barChart(root, {
      title: "Code version on each instance (its state under its name)",
      yTitle: "version",
      categories: (f) => f.metrics.instance_names,
      values: (f) => f.metrics.instance_versions,
      colors: versionColors,
      states: versionStates,
      patterns: { "not the release": "x", booting: "/", draining: "." },
      categoryTitle: "Instance",
    }, ctx),
  );
}
