// Charts for the local-cache engine: the fleet's hit ratio (with the dip a
// re-route causes), each server's hit ratio and load, and the users a resize
// sent to a server whose cache had never seen them.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["hit_ratio_recent", "hit_ratio_low", "moved_fraction", "db_reads_per_s"];

const serverNames = (f) => (f.metrics.shard_names || []).map((name) => name.replace(/^shard /, "server "));

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Hit ratio of the app servers' caches (last second)",
      yTitle: "share of requests",
      yRange: [0, 1.02],
      series: [{ label: "Hit ratio", value: (f) => f.metrics.hit_ratio_recent, theory: "hit_ratio_recent" }],
    }, ctx),
    barChart(root, {
      title: "Hit ratio per server (last second)",
      yTitle: "share of requests",
      categories: serverNames,
      values: (f) => f.metrics.hit_ratio_per_server,
      colors: (f) => (f.metrics.shard_names || []).map(() => PALETTE[2]),
    }, ctx),
    barChart(root, {
      title: "Requests per server (last 3 s)",
      yTitle: "requests/s",
      categories: serverNames,
      values: (f) => f.metrics.load_per_shard,
    }, ctx),
    lineChart(root, {
      title: "Users sent to another server by the last resize",
      yTitle: "share of all users",
      yRange: [0, 1.02],
      series: [{ label: "Users moved", value: (f) => f.metrics.moved_fraction, theory: "moved_fraction" }],
    }, ctx),
  );
}
