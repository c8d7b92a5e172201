// The live picture of balancer failover: clients, the virtual IP, the active and
// standby balancers with the heartbeat link between them, and the backend. Requests
// are dots from the clients through the balancer holding the virtual IP to the
// backend (red when dropped); heartbeats are dots from the active to the standby.
// A balancer is a button: kill it when it is active, revive it when it is down; the
// heartbeat link is a button that cuts it (partition) or heals it.
import { Picture, eventCount, format, link, node, reducedMotion, sample } from "./common.js";

const STATE_WORDS = ["down", "standby", "taking over", "active"];
const NAMES = ["lb-a", "lb-b"];

export default function mount(root, ctx) {
  const pic = new Picture(root, ctx, {
    title: "Clients reach the backend through whichever balancer holds the virtual IP",
    height: 262,
  });
  const reduced = reducedMotion();
  const L = pic.layers;
  const clients = node(L.nodes, { x: 6, y: 8, w: 90, h: 52, name: "Clients" });
  const vip = node(L.nodes, { x: 156, y: 8, w: 96, h: 52, name: "Virtual IP" });
  const lbs = [
    node(L.nodes, { x: 20, y: 100, w: 104, h: 56, name: NAMES[0] }),
    node(L.nodes, { x: 276, y: 100, w: 104, h: 56, name: NAMES[1] }),
  ];
  const beat = node(L.nodes, { x: 146, y: 102, w: 108, h: 52, name: "Heartbeats" });
  const backend = node(L.nodes, { x: 136, y: 200, w: 128, h: 56, name: "Backend" });
  const toVip = link(L.links, clients.right(), vip.left(), { arrow: pic.arrow });
  const vipTo = lbs.map((lb) => link(L.links, vip.bottom(), lb.top(), { arrow: pic.arrow }));
  const toBackend = lbs.map((lb) => link(L.links, lb.bottom(), backend.top(), { arrow: pic.arrow }));
  const beatLinks = [link(L.links, lbs[0].right(), beat.left()), link(L.links, beat.right(), lbs[1].left())];
  let state = [3, 1];
  let present = [true, true];
  let picture = {};
  let lastArrived = null;

  lbs.forEach((lb, i) => {
    pic.action(lb.el, () => lbLabel(i), () => lbActivate(i));
  });
  pic.action(beat.el, () => (picture.partitioned ? "Heal the heartbeat link" : "Cut the heartbeat link (partition)"),
    () => {
      if (!present[1]) return ctx.refuse && ctx.refuse("A partition needs two balancers: turn the standby on first.");
      return ctx.command(picture.partitioned ? "heal" : "partition", {});
    });

  function lbLabel(i) {
    if (!present[i]) return `${NAMES[i]} is not installed (no standby)`;
    const s = state[i];
    if (s === 0) return `Revive ${NAMES[i]}`;
    if (s === 3) return `Kill ${NAMES[i]}, the active balancer`;
    return `${NAMES[i]} is ${STATE_WORDS[s]}: only the active balancer can be killed`;
  }

  function lbActivate(i) {
    if (!present[i]) return ctx.refuse && ctx.refuse("There is no standby: turn it on first.");
    const s = state[i];
    if (s === 0) return ctx.command("revive", {});
    if (s === 3) return ctx.command("kill_active", {});
    return ctx.refuse && ctx.refuse(`${NAMES[i]} is ${STATE_WORDS[s]}: only the active balancer can be killed.`);
  }

  function push(frame) {
    const m = frame.metrics;
    picture = frame.picture || {};
    present = NAMES.map((name) => (m.balancer_names || []).includes(name));
    state = NAMES.map((name) => {
      const i = (m.balancer_names || []).indexOf(name);
      return i < 0 ? 0 : m.balancer_state[i];
    });
    const holders = [0, 1].filter((i) => present[i] && state[i] === 3);
    const missed = picture.missed || 0;
    const limit = picture.missed_limit || 0;
    lbs.forEach((lb, i) => {
      const shown = present[i];
      lb.el.style.display = shown ? "" : "none";
      vipTo[i].el.style.display = toBackend[i].el.style.display = shown ? "" : "none";
      if (!shown) return;
      const s = state[i];
      const detail = s === 3 ? (holders.length > 1 ? "split brain!" : "holds the VIP")
        : s === 1 ? `missed ${missed} of ${limit}` : s === 2 ? "moving the VIP" : "dead: repairing";
      lb.update({ state: STATE_WORDS[s], detail, down: s === 0, highlight: s === 3 });
      vipTo[i].update({ active: s === 3, dashed: s !== 3 });
      toBackend[i].update({ active: s === 3, dashed: s !== 3 });
    });
    for (const part of [beat.el, ...beatLinks.map((l) => l.el)]) part.style.display = present[1] ? "" : "none";
    const cut = Boolean(picture.partitioned);
    const beats = eventCount(frame, "balancer.heartbeat");
    beat.update({ state: cut ? "cut" : reduced ? `ok, ${format(beats)} beats` : "ok", detail: cut ? "partitioned" : state.includes(1) ? `missed ${missed} of ${limit}` : "nobody listens", down: cut });
    beatLinks.forEach((l) => l.update({ dashed: cut }));
    const holderWords = holders.map((i) => NAMES[i]).join(" and ");
    vip.update({ state: holders.length ? `held by ${holders.length > 1 ? "both" : holderWords}` : "nobody: outage", detail: `${format(Math.round(m.arrival_rps_recent || 0))} req/s`, down: !holders.length, highlight: holders.length > 1 });
    const busy = picture.backend_busy || 0;
    const workers = picture.backend_workers || 1;
    backend.update({ state: busy >= workers ? "full" : "up", detail: `${format(busy)} of ${format(workers)} busy`, fill: busy / workers });
    clients.update({ state: `${format(Math.round(m.served_rps_recent || 0))} served/s`, detail: `${format(Math.round(m.dropped_rps_recent || 0))} dropped/s` });
    pic.refreshActions();
    // Dots: requests this frame, heartbeats from the active to a listening standby.
    const arrived = lastArrived === null ? 0 : Math.max(0, (m.arrived || 0) - lastArrived);
    lastArrived = m.arrived || 0;
    const served = eventCount(frame, "request.served");
    const dropped = eventCount(frame, "request.dropped");
    pic.dots.send(clients.right(), vip.left(), sample(arrived - dropped));
    if (dropped) pic.dots.send(clients.right(), vip.left(), Math.min(3, sample(dropped)), "is-error");
    if (holders.length) {
      const h = holders[0];
      pic.dots.send(vip.bottom(), lbs[h].top(), sample(served));
      pic.dots.send(lbs[h].bottom(), backend.top(), sample(served));
    }
    if (beats && !cut && holders.length === 1 && present[1 - holders[0]]) {
      const from = holders[0] === 0 ? lbs[0].right() : lbs[1].left();
      const to = holders[0] === 0 ? lbs[1].left() : lbs[0].right();
      pic.dots.send(from, to, Math.min(2, beats), "is-ok");
    }
    toVip.update({ label: reduced ? `${format(arrived)} req` : "", active: arrived > 0 });
    // The sentence.
    const parts = [];
    parts.push(holders.length === 0 ? "Nobody holds the virtual IP: requests are dropped"
      : holders.length > 1 ? "Split brain: both balancers claim the virtual IP"
        : `${holderWords} is active and holds the virtual IP`);
    for (const i of [0, 1]) {
      if (present[i] && state[i] !== 3) parts.push(`${NAMES[i]} is ${STATE_WORDS[state[i]]}`);
    }
    if (!present[1]) parts.push("there is no standby");
    else if (cut) parts.push("the heartbeat link is cut");
    else if (state.includes(1)) parts.push(`the standby missed ${missed} of ${limit} heartbeats`);
    else parts.push("no standby is ready");
    parts.push(`backend ${format(busy)} of ${format(workers)} workers busy`);
    const cost = picture.per_death;
    if (cost) {
      const span = cost.outage_lo_s === cost.outage_hi_s ? `${format(cost.outage_s)} s` : `${format(cost.outage_lo_s)} to ${format(cost.outage_hi_s)} s`;
      parts.push(`theory: a death of the active costs ${span} without service (${format(cost.outage_s)} s on average) and about ${format(Math.round(cost.dropped))} requests`);
    }
    pic.say(`${parts.join("; ")}.`);
  }

  return {
    push,
    reset() {
      lastArrived = null;
      pic.reset();
    },
  };
}
