// Charts for the cache engine: hit ratio, latency, and where reads are served.
import { group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["hit_ratio_recent", "latency_ms_recent", "db_reads_per_s_recent", "occupancy"];

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Hit ratio (last 3 s)",
      yTitle: "share of reads",
      yRange: [0, 1.02],
      series: [{ label: "Hit ratio", value: (f) => f.metrics.hit_ratio_recent }],
    }, ctx),
    lineChart(root, {
      title: "Mean read latency (last 3 s)",
      yTitle: "ms",
      series: [{ label: "Latency", value: (f) => f.metrics.latency_ms_recent }],
    }, ctx),
    lineChart(root, {
      title: "Reads per second",
      yTitle: "reads/s",
      series: [
        { label: "Hits (cache)", value: (f) => f.metrics.hits_per_s_recent },
        { label: "Misses (database)", value: (f) => f.metrics.misses_per_s_recent },
      ],
    }, ctx),
  );
}
