// Charts for the failover engine: heartbeats, the standby's patience, and what an outage costs.
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["outage_s", "dropped_requests", "failovers", "availability"];

// Balancer states as the engine reports them: 0 down, 1 standby, 2 taking over, 3 active.
const STATE_COLORS = [PALETTE[1], PALETTE[5], PALETTE[4], PALETTE[2]];
const STATE_WORDS = ["down", "standby", "taking over", "active"];
const stateColors = (f) => (f.metrics.balancer_state || []).map((s) => STATE_COLORS[s] || PALETTE[0]);
const stateWords = (f) => (f.metrics.balancer_state || []).map((s) => STATE_WORDS[s] || String(s));

export default function mount(root, ctx) {
  return group(
    lineChart(root, {
      title: "Requests per second (last 3 s)",
      yTitle: "req/s",
      series: [
        { label: "Served", value: (f) => f.metrics.served_rps_recent },
        { label: "Dropped", value: (f) => f.metrics.dropped_rps_recent, color: PALETTE[1] },
      ],
    }, ctx),
    lineChart(root, {
      title: "Silence heard by the standby",
      yTitle: "seconds since the last heartbeat",
      series: [
        { label: "Silence", value: (f) => f.metrics.heartbeat_silence_s },
        {
          label: "Takes over at (missed x interval)",
          value: (f) => f.metrics.detection_threshold_s,
          color: PALETTE[1],
          dash: "dash",
        },
      ],
    }, ctx),
    lineChart(root, {
      title: "Failovers: time from the death to the standby acting, and to it holding the virtual IP",
      yTitle: "s",
      series: [
        { label: "Mean outage per failover", value: (f) => f.metrics.mean_failover_outage_s, theory: "mean_failover_outage_s" },
        { label: "Mean detection", value: (f) => f.metrics.mean_detection_s, color: PALETTE[3], theory: "mean_detection_s" },
      ],
    }, ctx),
    barChart(root, {
      title: "Balancers: 0 down, 1 standby, 2 taking over, 3 active",
      yTitle: "state",
      yRange: [0, 3.2],
      categories: (f) => f.metrics.balancer_names,
      values: (f) => f.metrics.balancer_state,
      colors: stateColors,
      states: stateWords,
      patterns: { down: "x", "taking over": "/" },
      categoryTitle: "Balancer",
      valueTitle: "State number",
    }, ctx),
    lineChart(root, {
      title: "Balancers holding the virtual IP (2 = split brain)",
      yTitle: "balancers",
      yRange: [0, 2.2],
      series: [{ label: "Active", value: (f) => f.metrics.active_balancers }],
    }, ctx),
  );
}
