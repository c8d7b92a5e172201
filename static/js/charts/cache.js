// Charts for the cache engine: hit ratio, latency, where reads are served, and
// what writes do (database writes saved by write-behind, reads served stale).
// Dashed lines: the steady state theory predicts for independent Zipf reads.
import { PALETTE, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["hit_ratio_recent", "latency_ms_recent", "db_reads_per_s_recent", "occupancy"];

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Hit ratio (last 3 s)",
      yTitle: "share of reads",
      yRange: [0, 1.02],
      series: [{ label: "Hit ratio", value: (f) => f.metrics.hit_ratio_recent, theory: "hit_ratio" }],
    }, ctx),
    lineChart(root, {
      title: "Mean read latency (last 3 s)",
      yTitle: "ms",
      series: [{ label: "Latency", value: (f) => f.metrics.latency_ms_recent, theory: "mean_latency_ms" }],
    }, ctx),
    lineChart(root, {
      title: "Reads per second",
      yTitle: "reads/s",
      series: [
        { label: "Hits (cache)", value: (f) => f.metrics.hits_per_s_recent },
        { label: "Misses (database)", value: (f) => f.metrics.misses_per_s_recent, theory: "db_reads_per_s" },
      ],
    }, ctx),
    lineChart(root, {
      title: "Writes and stale reads (last 3 s)",
      yTitle: "per second",
      series: [
        { label: "Writes", value: (f) => f.metrics.writes_per_s_recent },
        { label: "Database writes", value: (f) => f.metrics.db_writes_per_s_recent },
        { label: "Stale reads", value: (f) => f.metrics.stale_per_s_recent, color: PALETTE[1] },
      ],
    }, ctx),
  );
}
