// Charts for the deploy engine: how many servers serve which version while a
// release goes out, what that costs in failed requests, and each server's state.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["capacity", "downtime_s", "error_requests", "mixed_version_s"];

const STOPPED = "#9a9a9a";

// Newest version in one colour, older ones in another, stopped servers grey; in
// words and patterns too, under each server's name.
function versionColors(frame) {
  const versions = frame.metrics.server_versions || [];
  const newest = Math.max(0, ...versions);
  return versions.map((v) => (v === 0 ? STOPPED : v === newest ? PALETTE[2] : PALETTE[0]));
}

function versionStates(frame) {
  const versions = frame.metrics.server_versions || [];
  const newest = Math.max(0, ...versions);
  return versions.map((v) => (v === 0 ? "stopped" : v === newest ? "new" : "old"));
}

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Servers in service",
      yTitle: "servers",
      series: [
        { label: "On the newest version", value: (f) => f.metrics.servers_newest, color: PALETTE[2] },
        { label: "On an older version", value: (f) => f.metrics.servers_older, color: PALETTE[0] },
        { label: "Lowest in service", value: (f) => f.metrics.min_capacity, color: PALETTE[1], dash: "dot", theory: "min_capacity" },
        { label: "Most running", value: (f) => f.metrics.peak_servers, color: PALETTE[4], dash: "dashdot", theory: "peak_servers" },
      ],
    }, ctx),
    lineChart(root, {
      title: "Requests (last 3 s)",
      yTitle: "requests/s",
      series: [
        { label: "All requests", value: (f) => f.metrics.requests_per_s_recent },
        { label: "Failed", value: (f) => f.metrics.errors_per_s_recent, color: PALETTE[1] },
      ],
    }, ctx),
    barChart(root, {
      title: "Version on each server (0 = stopped)",
      yTitle: "version",
      categories: (f) => f.metrics.server_names,
      values: (f) => f.metrics.server_versions,
      colors: versionColors,
      states: versionStates,
      patterns: { old: "/" },
      categoryTitle: "Server",
    }, ctx),
    barChart(root, {
      title: "Requests per server (last 3 s)",
      yTitle: "requests/s",
      categories: (f) => f.metrics.server_names,
      values: (f) => f.metrics.server_rps_recent,
      colors: versionColors,
      states: versionStates,
      patterns: { old: "/" },
      categoryTitle: "Server",
    }, ctx),
  );
}
