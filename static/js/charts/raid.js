// Charts for the RAID engine: the rebuild racing the next failure, how busy each
// disk is, what the write penalty leaves of the array's IOPS, and what was lost.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["state", "rebuild_progress", "rebuild_eta_s", "data_lost"];

// Disk states as the engine reports them.
const STATE_COLORS = { ok: PALETTE[0], rebuilding: PALETTE[4], failed: PALETTE[1] };
const diskColors = (f) => (f.metrics.disk_states || []).map((s) => STATE_COLORS[s] || PALETTE[6]);

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Rebuild progress",
      yTitle: "share of the disk rebuilt",
      yRange: [0, 1.02],
      series: [{ label: "Rebuilt", value: (f) => f.metrics.rebuild_progress }],
    }, ctx),
    barChart(root, {
      title: "Disk utilisation, last 3 s (blue working, orange rebuilding, red failed)",
      yTitle: "busy share (over 1: overloaded)",
      categories: (f) => f.metrics.disk_names,
      values: (f) => f.metrics.disk_utilisation,
      colors: diskColors,
    }, ctx),
    lineChart(root, {
      title: "I/Os per second the working disks could serve (last 3 s)",
      yTitle: "I/O per s",
      series: [
        { label: "Reads", value: (f) => f.metrics.read_iops_recent },
        { label: "Writes (after the write penalty)", value: (f) => f.metrics.write_iops_recent, color: PALETTE[1] },
      ],
    }, ctx),
    lineChart(root, {
      title: "Failures, read errors and losses",
      yTitle: "count",
      series: [
        { label: "Disk failures", value: (f) => f.metrics.disk_failures },
        { label: "Unrecoverable read errors", value: (f) => f.metrics.ures, color: PALETTE[4] },
        { label: "Stripes lost", value: (f) => f.metrics.lost_stripes, color: PALETTE[1] },
      ],
    }, ctx),
  );
}
