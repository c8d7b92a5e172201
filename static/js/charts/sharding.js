// Charts for the sharding engine: where the load lands, where the keys live, how
// many keys a resize moves compared with modulo and consistent hashing, and how
// many shards a request with related rows has to read.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["moved_fraction", "load_imbalance_recent", "max_shard_share_recent", "shards"];

// The textbook share of keys moved by the last resize, if it added the newest shard.
const moduloMoved = (f) => (f.metrics.shards > 1 ? (f.metrics.shards - 1) / f.metrics.shards : null);
const ringMoved = (f) => (f.metrics.shards > 1 ? 1 / f.metrics.shards : null);

export default function mount(root, ctx) {
  return group(
    barChart(root, {
      title: "Queries per shard (last 3 s)",
      yTitle: "queries/s",
      categories: (f) => f.metrics.shard_names,
      values: (f) => f.metrics.load_per_shard,
    }, ctx),
    barChart(root, {
      title: "Keys per shard",
      yTitle: "keys",
      categories: (f) => f.metrics.shard_names,
      values: (f) => f.metrics.keys_per_shard,
      colors: (f) => (f.metrics.shard_names || []).map(() => PALETTE[2]),
    }, ctx),
    lineChart(root, {
      title: "Keys moved by the last resize",
      yTitle: "share of all keys",
      yRange: [0, 1.02],
      series: [
        { label: "Measured", value: (f) => f.metrics.moved_fraction, theory: "moved_fraction" },
        { label: "Modulo after adding a shard: (n-1)/n", value: moduloMoved, color: PALETTE[1], dash: "dash" },
        { label: "Consistent hashing after adding: 1/n", value: ringMoved, color: PALETTE[2], dash: "dot" },
      ],
    }, ctx),
    lineChart(root, {
      title: "Load imbalance: busiest shard over the mean (last 3 s)",
      yTitle: "busiest / mean",
      series: [{ label: "Imbalance", value: (f) => f.metrics.load_imbalance_recent }],
    }, ctx),
    lineChart(root, {
      title: "Shards each request reads, with its related rows",
      yTitle: "shards",
      series: [{ label: "Shards per request", value: (f) => f.metrics.shards_per_request, theory: "shards_per_request" }],
    }, ctx),
  );
}
