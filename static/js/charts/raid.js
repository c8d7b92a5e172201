// Charts for the RAID engine: the rebuild racing the next failure, how busy each
// disk is, what the write penalty leaves of the array's IOPS, and what was lost.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts (four at most; the rebuild chart says the time left).
export const figures = ["state", "rebuild_progress", "next_failure_loss", "data_lost"];

// Disk states as the engine reports them, in colour, in words and as a pattern.
const STATE_COLORS = { ok: PALETTE[0], rebuilding: PALETTE[4], failed: PALETTE[1] };
const STATE_WORDS = { ok: "working", rebuilding: "rebuilding", failed: "failed" };
const diskColors = (f) => (f.metrics.disk_states || []).map((s) => STATE_COLORS[s] || PALETTE[6]);
const diskStates = (f) => (f.metrics.disk_states || []).map((s) => STATE_WORDS[s] || s);

// The rebuild in words: a progress of 1 or 0 with no disk rebuilding is no rebuild.
function rebuildSentence(f) {
  const m = f.metrics;
  if (m.state !== "rebuilding") return `No rebuild running; the array is ${m.state}.`;
  const eta = Math.round(m.rebuild_eta_s).toLocaleString("en");
  return `Rebuild ${Math.round(m.rebuild_progress * 100)}% done, about ${eta} s left in the array's time.`;
}

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Rebuild progress",
      yTitle: "share of the disk rebuilt",
      yRange: [0, 1.02],
      series: [{ label: "Rebuilt", value: (f) => f.metrics.rebuild_progress }],
      describe: rebuildSentence,
    }, ctx),
    barChart(root, {
      title: "Disk utilisation, last 3 s (each disk's state under its name)",
      yTitle: "busy share (over 1: overloaded)",
      categories: (f) => f.metrics.disk_names,
      values: (f) => f.metrics.disk_utilisation,
      colors: diskColors,
      states: diskStates,
      patterns: { rebuilding: "/", failed: "x" },
      categoryTitle: "Disk",
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
      title: "Rebuilds that met an unreadable bit",
      yTitle: "share of finished rebuilds",
      yRange: [0, 1.02],
      series: [{ label: "Measured", value: (f) => (f.metrics.rebuilds ? f.metrics.rebuild_ure_share : null), theory: "rebuild_ure_share" }],
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
