// The balancer's live picture: clients, the balancer (or, under DNS round robin,
// the DNS and the answers the busiest clients have cached), and the servers with
// their state, queue and share of the traffic. A server is a button: it kills the
// server, or brings a dead one back.
import {
  FLEET_BOX_H as BOX_H, fleetBoxes, fleetGrid, fleetNames, fleetPicture, format, link, moreBox,
  node, queue, redrawOnChange, reducedMotion, sample, serverNumber, serverUp,
} from "./common.js";

const SHOWN = 10; // server boxes drawn; the rest are summed up in the last one
const COLS = 5;
const BOX_W = 74;
const GAP = 6;
const ROW_H = BOX_H + 26; // a box and its queue below it

const STRATEGY_WORDS = {
  round_robin: "round robin",
  random: "random",
  least_connections: "least connections",
  power_of_two: "power of two",
  least_cpu: "least CPU",
  weighted_round_robin: "weighted round robin",
  ip_hash: "IP hash",
  dns_round_robin: "DNS round robin",
  dedicated_pools: "dedicated pools",
};

function serverState(m, pic, i) {
  if (!m.server_up[i]) return "down";
  if (pic.draining && pic.draining[i]) return "draining";
  if (pic.in_rotation && !pic.in_rotation[i]) return "waiting";
  return m.server_load[i] > 0 ? "busy" : "idle";
}

export default function mount(root, ctx) {
  const reduced = reducedMotion();
  let pic = null;
  let parts = null;
  let latest = null;
  let previous = new Map(); // server name -> requests routed to it, last frame

  function build(dns, shownNames, rest) {
    const height = (dns ? 146 : 80) + ROW_H * Math.ceil((shownNames.length + (rest ? 1 : 0)) / COLS) + 4;
    pic = fleetPicture(pic, root, ctx, { title: "Clients, the balancer and the servers", height });
    const { links, nodes } = pic.layers;
    const clients = node(nodes, { x: 4, y: 8, w: 120, h: BOX_H, name: "Clients" });
    const front = node(nodes, { x: 150, y: 8, w: 160, h: BOX_H, name: dns ? "DNS" : "Balancer" });
    const toFront = link(links, clients.right(), front.left(), { arrow: pic.arrow });
    const resolvers = [];
    if (dns) {
      for (let i = 0; i < 3; i++) {
        const r = node(nodes, { x: 4 + i * 132, y: 80, w: 124, h: BOX_H, name: "" });
        link(links, front.bottom(), r.top(), { dashed: true });
        resolvers.push(r);
      }
    }
    const top = dns ? 160 : 94;
    const source = dns ? null : front.bottom();
    const grid = fleetGrid(shownNames.length + (rest ? 1 : 0), { top, cols: COLS, w: BOX_W, gap: GAP, rowH: ROW_H });
    const { boxes: servers, restBox } = fleetBoxes(nodes, grid, shownNames, rest, (box, name, k) => {
      const { x, y } = box;
      const q = queue(nodes, { x: x + 1, y: y + BOX_H + 6, slots: 4, size: 10, gap: 2 });
      const from = source || { x: box.top().x, y: k < COLS ? 136 : y - 10 };
      const line = link(links, from, box.top(), { arrow: pic.arrow });
      pic.action(box.el, () => {
        const up = serverUp(latest, name);
        return `${up ? "Kill" : "Revive"} server ${serverNumber(name)}`;
      }, () => {
        const up = serverUp(latest, name);
        ctx.command(up ? "kill" : "revive", { server: serverNumber(name) });
      });
      return { name, box, q, line, from };
    });
    parts = { clients, front, toFront, resolvers, servers, restBox, dns };
  }

  const redraw = redrawOnChange(build);

  function push(frame) {
    const m = frame.metrics || {};
    const p = frame.picture || {};
    const names = m.server_names || [];
    latest = frame;
    const dns = m.strategy === "dns_round_robin";
    const { shown: shownNames, rest } = fleetNames(names, SHOWN);
    redraw(`${dns}|${shownNames.join(",")}|${rest > 0}`, dns, shownNames, rest > 0);
    const index = new Map(names.map((n, i) => [n, i]));
    const routed = p.routed || [];
    const delta = new Map();
    let sent = 0;
    names.forEach((n, i) => {
      const d = previous.has(n) ? Math.max(0, routed[i] - previous.get(n)) : 0;
      delta.set(n, d);
      sent += d;
    });
    previous = new Map(names.map((n, i) => [n, routed[i] || 0]));

    const rotation = m.servers_in_rotation || 0;
    const strategy = STRATEGY_WORDS[m.strategy] || m.strategy || "";
    const offered = (m.completed_per_s_recent || 0) + (m.dropped_per_s_recent || 0);
    parts.clients.update({ state: `${format(offered)} req/s`, detail: `${format(m.dropped_per_s_recent || 0)}/s dropped` });
    parts.toFront.update({ label: reduced ? `${format(sent)} req` : "" });
    if (dns) {
      parts.front.update({ state: "round robin answers", detail: `${format(m.dns_lookups || 0)} lookups` });
      const resolvers = p.resolvers || [];
      const dead = new Set(names.filter((n, i) => !m.server_up[i]));
      parts.resolvers.forEach((r, i) => {
        const a = resolvers[i];
        if (!a) return r.update({ name: "", state: "", detail: "" });
        const stale = a.server && dead.has(a.server);
        r.update({
          name: `Client ${a.client}`,
          state: a.server ? `cached ${a.server}${stale ? " (dead)" : ""}` : "no answer",
          detail: a.server ? `TTL ${format(a.ttl_s)} s left` : `${Math.round(a.share * 100)}% of traffic`,
          down: stale,
          highlight: false,
        });
      });
    } else {
      parts.front.update({ state: strategy, detail: `${rotation} in rotation` });
    }
    for (const s of parts.servers) {
      const i = index.get(s.name);
      if (i === undefined) continue;
      const state = serverState(m, p, i);
      const load = m.server_load[i] || 0;
      const util = (m.server_utilization || [])[i] || 0;
      const pool = p.pool ? ` ${p.pool[i]}` : "";
      // Under DNS the count that matters is the clients pinned to it by their cache.
      const detail = p.cached ? `${format(p.cached[i])} clients` : `${format(load)} held`;
      s.box.update({
        name: `${s.name}${pool}`,
        state,
        detail,
        fill: state === "down" ? 0 : util,
        down: state === "down",
      });
      s.q.update(load);
      const d = delta.get(s.name) || 0;
      s.line.update({ label: reduced ? `+${format(d)}` : "", dashed: state === "down" || state === "waiting", active: d > 0 });
      const from = dns ? resolverFor(s.name, p) : s.from;
      pic.dots.send(from, s.box.top(), sample(d), state === "down" ? "is-error" : "");
    }
    moreBox(parts.restBox, names.slice(parts.servers.length), (rest) => {
      let up = 0;
      let held = 0;
      for (const n of rest) {
        const i = index.get(n);
        up += m.server_up[i] ? 1 : 0;
        held += m.server_load[i] || 0;
      }
      return { state: `${up} up, ${rest.length - up} down`, detail: `${format(held)} held` };
    });
    pic.dots.send(parts.clients.right(), parts.front.left(), dns ? 0 : sample(sent));
    pic.refreshActions();
    pic.say(sentence(m, p, names, strategy, dns));
  }

  function resolverFor(name, p) {
    const k = (p.resolvers || []).findIndex((a) => a.server === name);
    return k >= 0 && parts.resolvers[k] ? parts.resolvers[k].bottom() : { x: parts.clients.bottom().x, y: 136 };
  }

  // Before the first frame: the default pool, so the picture is there to read.
  const param = (name) => (ctx.engine.params || []).find((x) => x.name === name) || {};
  const count = Math.max(1, Math.min(Number(param("servers").default) || 5, SHOWN));
  redraw("initial", param("strategy").default === "dns_round_robin", Array.from({ length: count }, (_, i) => `s${i + 1}`), false);

  return {
    push,
    reset() {
      previous = new Map();
      latest = null;
      if (pic) pic.reset();
    },
  };
}

function sentence(m, p, names, strategy, dns) {
  const up = m.server_up || [];
  const alive = up.filter(Boolean).length;
  const down = names.filter((n, i) => !up[i]).map((n) => `server ${n.replace(/^s/, "")}`);
  const held = (m.server_load || []).reduce((a, b) => a + b, 0);
  const parts = [`${alive} of ${names.length} servers up`];
  if (down.length) parts.push(`${down.slice(0, 3).join(", ")}${down.length > 3 ? ` and ${down.length - 3} more` : ""} down`);
  parts.push(`${format(held)} requests held`);
  parts.push(dns ? "clients ask DNS, which answers in turn" : `the balancer uses ${strategy}`);
  if (dns && m.clients_on_dead_server) parts.push(`${format(m.clients_on_dead_server)} clients cache a dead server`);
  return `${parts.join("; ")}.`;
}

