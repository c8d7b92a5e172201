// Live picture of the scaling engine: the traffic, then either the one server
// (its size, workers busy, queue; rebooting while it is resized) or the row of
// identical servers behind the round-robin balancer, and what they cost.
// Requests are dots sampled from the frame's counts; dropped ones are red.
import { Picture, eventCount, format, link, node, queue, reducedMotion, sample, svg } from "./common.js";

const MAX_SERVERS = 15; // horizontal: one box per server up to this; the last stands for the rest
const PER_ROW = 5;
const BOX_W = 72;
const BOX_H = 56;
const GAP = 5;
const GRID_Y = 92;

export default function mount(root, ctx) {
  const pic = new Picture(root, ctx, { title: "The servers and what they cost", height: 250 });
  const reduced = reducedMotion();
  let parts = null;
  let shape = "";
  const nodes = pic.layers.nodes;
  const links = pic.layers.links;
  const labels = pic.layers.labels;

  function clear() {
    for (const name of ["links", "nodes", "labels"]) pic.layers[name].replaceChildren();
    pic.actions = [];
  }

  function setHeight(h) {
    pic.height = h;
    pic.svg.setAttribute("viewBox", `0 0 ${pic.width} ${h}`);
  }

  // A server box that kills its server when clicked; `server()` reads the
  // server's current index and state, as the box may be reused for another.
  function killable(box, server) {
    pic.action(box.el, () => {
      const s = server();
      if (!s) return "No server here";
      return s.alive ? `Kill server ${s.name}` : `${s.name} is ${s.state}: it is replaced after the repair time`;
    }, () => {
      const s = server();
      if (!s) return;
      if (!s.alive) {
        if (ctx.refuse) ctx.refuse(`${s.name} is already down; it comes back after the repair time.`);
        return;
      }
      ctx.command("kill_server", { server: s.index });
    });
  }

  function buildVertical(slots) {
    clear();
    setHeight(220);
    const traffic = node(nodes, { x: 6, y: 24, w: 92, h: 56, name: "Traffic" });
    const server = node(nodes, { x: 136, y: 24, w: 170, h: 56, name: "web-0" });
    server.el.dataset.role = "server";
    const q = queue(nodes, { x: 100, y: 112, slots, size: 12, gap: 3, label: "" });
    const upgrade = node(nodes, { x: 318, y: 24, w: 76, h: 56, name: "Upgrade" });
    const toServer = link(links, traffic.right(), server.left(), { arrow: pic.arrow });
    const cost = svg("text", { class: "pic-state", x: 6, y: 170 });
    const capacity = svg("text", { class: "pic-detail", x: 6, y: 192 });
    const dropped = svg("text", { class: "pic-detail", x: 394, y: 192, "text-anchor": "end" });
    labels.append(cost, capacity, dropped);
    const current = { value: null };
    killable(server, () => current.value);
    pic.action(upgrade.el, () => "Upgrade the server one size (a short downtime)", () => ctx.command("upgrade", {}));
    parts = { vertical: true, traffic, server, q, upgrade, toServer, cost, capacity, dropped, current, dropAt: { x: 340, y: 186 } };
  }

  function buildHorizontal(boxes) {
    clear();
    const rows = Math.max(1, Math.ceil(boxes / PER_ROW));
    const bottom = GRID_Y + rows * (BOX_H + GAP);
    setHeight(bottom + 50);
    const traffic = node(nodes, { x: 6, y: 8, w: 92, h: 52, name: "Traffic" });
    const balancer = node(nodes, { x: 140, y: 8, w: 120, h: 52, name: "Balancer" });
    const add = node(nodes, { x: 302, y: 8, w: 92, h: 52, name: "Add server" });
    const toBalancer = link(links, traffic.right(), balancer.left(), { arrow: pic.arrow });
    const fan = link(links, balancer.bottom(), { x: balancer.bottom().x, y: GRID_Y - 4 }, { arrow: pic.arrow });
    const servers = [];
    for (let i = 0; i < boxes; i++) {
      const col = i % PER_ROW;
      const row = Math.floor(i / PER_ROW);
      const box = node(nodes, { x: 6 + col * (BOX_W + GAP), y: GRID_Y + row * (BOX_H + GAP), w: BOX_W, h: BOX_H, name: "" });
      box.el.dataset.role = "server";
      const current = { value: null };
      killable(box, () => current.value);
      servers.push({ box, current });
    }
    pic.action(add.el, () => "Add a server behind the balancer", () => ctx.command("add_server", {}));
    const cost = svg("text", { class: "pic-state", x: 6, y: bottom + 20 });
    const dropped = svg("text", { class: "pic-detail", x: 394, y: bottom + 40, "text-anchor": "end" });
    const capacity = svg("text", { class: "pic-detail", x: 6, y: bottom + 40 });
    labels.append(cost, dropped, capacity);
    parts = { vertical: false, traffic, balancer, add, toBalancer, fan, servers, cost, capacity, dropped, dropAt: { x: 340, y: bottom + 36 } };
  }

  function push(frame) {
    const m = frame.metrics || {};
    const p = frame.picture || {};
    const vertical = (p.strategy || "vertical") === "vertical";
    const names = m.server_names || [];
    const states = m.server_state || [];
    const busy = p.busy || [];
    const queued = p.queued || [];
    const workers = p.workers || [];
    const qcap = p.qcap || [];
    const boxes = vertical ? 1 : Math.min(MAX_SERVERS, names.length);
    const slots = Math.max(1, Math.min(16, qcap[0] || 0));
    const key = vertical ? `v:${slots}` : `h:${boxes}`;
    if (key !== shape) {
      if (vertical) buildVertical(slots);
      else buildHorizontal(boxes);
      shape = key;
    }
    const P = parts;
    const served = eventCount(frame, "request.served");
    const droppedNow = eventCount(frame, "request.dropped");
    const info = (i) => ({
      index: Number(String(names[i]).replace("web-", "")),
      name: names[i],
      state: states[i],
      alive: ["up", "booting", "upgrading"].includes(states[i]),
    });
    P.traffic.update({ state: `${format(m.offered_rps || 0)} req/s`, detail: "offered now" });
    P.cost.textContent = `Cost: $${format(m.cost_per_hour || 0)} per hour (spent $${format(m.cost_total || 0)})`;
    P.capacity.textContent = `Capacity ${format(m.capacity_rps || 0)} req/s`;
    P.dropped.textContent = `Dropped: ${format(m.dropped_rps_recent || 0)} req/s`;
    let words;
    if (vertical) {
      const s = names.length ? info(0) : null;
      P.current.value = s;
      const state = states[0] || "off";
      const b = busy[0] || 0;
      const w = workers[0] || 0;
      P.server.update({
        name: `web-0: ${m.size || ""}`,
        state: state === "upgrading" ? "upgrading (rebooting)" : state,
        detail: state === "up" ? `${b} of ${w} workers busy` : "serves nothing",
        fill: w ? b / w : 0,
        down: state !== "up",
      });
      P.server.el.dataset.state = state;
      const qn = queued[0] || 0;
      P.q.update(qn, `Queue: ${format(qn)} of ${format(qcap[0] || 0)} places`);
      P.upgrade.update({ state: "one size", detail: "up" });
      pic.dots.send(P.traffic.right(), P.server.left(), sample(served));
      if (reduced) P.toServer.update({ label: `${format(served)} served` });
      words = `One ${m.size || ""} server, ${state}: ${b} of ${w} workers busy, ${qn} queued; `
        + `capacity ${format(m.capacity_rps || 0)} req/s for $${format(m.cost_per_hour || 0)} an hour; `
        + `traffic ${format(m.offered_rps || 0)} req/s, ${format(m.dropped_rps_recent || 0)} dropped per second.`;
    } else {
      const up = states.filter((s) => s === "up").length;
      P.balancer.update({ state: "round robin", detail: `${up} serving` });
      P.add.update({ state: "+1", detail: `${names.length} now` });
      P.servers.forEach(({ box, current }, i) => {
        const rest = names.length - i;
        if (i === MAX_SERVERS - 1 && rest > 1) {
          const restUp = states.slice(i).filter((s) => s === "up").length;
          current.value = info(i);
          box.update({ name: `+${rest} more`, state: `${restUp} up`, detail: `kill ${names[i]}`, fill: 0, down: false });
          return;
        }
        const s = info(i);
        current.value = s;
        const b = busy[i] || 0;
        const w = workers[i] || 0;
        box.update({
          name: names[i],
          state: s.state,
          detail: s.state === "up" ? `${b}/${w} busy q${queued[i] || 0}` : "",
          fill: w && s.state === "up" ? b / w : 0,
          down: s.state !== "up",
        });
      });
      const targets = P.servers.filter((_, i) => states[i] === "up").map(({ box }) => box.top());
      const n = sample(served);
      pic.dots.send(P.traffic.right(), P.balancer.left(), n);
      for (let k = 0; k < n && targets.length; k++) {
        pic.dots.send(P.balancer.bottom(), targets[(frame.t * 7 + k) % targets.length | 0], 1);
      }
      if (reduced) {
        P.toBalancer.update({ label: `${format(served + droppedNow)} in` });
        P.fan.update({ label: `${format(served)} served` });
      }
      const notUp = names.map((name, i) => [name, states[i]]).filter(([, s]) => s !== "up");
      const busyAll = busy.reduce((a, b) => a + b, 0);
      const workersUp = workers.filter((_, i) => states[i] === "up").reduce((a, b) => a + b, 0);
      words = `${up} of ${names.length} servers up`
        + (notUp.length ? ` (${notUp.slice(0, 4).map(([name, s]) => `${name} ${s}`).join(", ")}${notUp.length > 4 ? ", ..." : ""})` : "")
        + `; ${busyAll} of ${workersUp} workers busy; capacity ${format(m.capacity_rps || 0)} req/s for $${format(m.cost_per_hour || 0)} an hour; `
        + `traffic ${format(m.offered_rps || 0)} req/s, ${format(m.dropped_rps_recent || 0)} dropped per second.`;
    }
    pic.dots.send(P.traffic.bottom(), P.dropAt, sample(droppedNow), "is-error");
    pic.say(words);
    pic.refreshActions();
  }

  return {
    push,
    reset() {
      pic.reset();
      clear();
      parts = null;
      shape = "";
    },
  };
}
