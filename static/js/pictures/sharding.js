// Live picture of the sharding engine: the shards on a hash ring (consistent
// hashing) or along the key space (ranges, hash modulo), each shard's load, and
// after a resize the keys that moved, drawn moving to their new shard.
import { Picture, eventCount, format, node, sample, svg } from "./common.js";

const MAX_BOXES = 16; // shards drawn as boxes; beyond, the ring or bar alone
const MOVED_MS = 6000; // how long a resize stays highlighted
const RECENT_S = 5; // a resize this recent (simulated s) shows to a page that just joined
const RING = { x: 200, y: 150, r: 62 };

const sidOf = (name) => Number(String(name).replace(/^shard /, ""));

// A ring arc from angle a0 to a1 (radians, clockwise from the top).
function arcPath(a0, a1, r = RING.r) {
  const pt = (a) => `${(RING.x + r * Math.sin(a)).toFixed(1)},${(RING.y - r * Math.cos(a)).toFixed(1)}`;
  const large = a1 - a0 > Math.PI ? 1 : 0;
  if (a1 - a0 >= 2 * Math.PI - 1e-6) return `M${pt(0)} A${r},${r} 0 1 1 ${pt(Math.PI)} A${r},${r} 0 1 1 ${pt(0)}`;
  return `M${pt(a0)} A${r},${r} 0 ${large} 1 ${pt(a1)}`;
}

// The picture of any engine that splits keys over nodes: `noun` names a node (a
// shard, or an app server holding the users routed to it), `keys` what it holds,
// and `detail(m, i)` may replace a box's requests a second with a figure of its own.
export function splitPicture({ noun = "shard", keys: held = "keys", title = "Shards and where the keys live", detail = null } = {}) {
  return (root, ctx) => mountSplit(root, ctx, { noun, held, title, detail });
}

export default splitPicture();

function mountSplit(root, ctx, { noun, held, title, detail: boxDetail }) {
  const pic = new Picture(root, ctx, { title, height: 300 });
  let layoutKey = "";
  let parts = {}; // sid -> {box, seg, label}
  let adder = null;
  let mode = "ring";
  let movedUntil = 0;
  let moved = null; // {from, to, total}
  let ids = [];
  let movedAt = null;

  function clear() {
    for (const name of ["links", "nodes", "labels"]) pic.layers[name].replaceChildren();
    pic.actions = [];
    parts = {};
  }

  function boxPlace(i, n) {
    if (mode === "ring") {
      const w = n <= 8 ? 74 : 46;
      const a = (2 * Math.PI * i) / n;
      const cx = RING.x + 148 * Math.sin(a);
      const cy = RING.y - 116 * Math.cos(a);
      return { x: cx - w / 2, y: cy - 26, w };
    }
    const perRow = 8;
    const row = Math.floor(i / perRow);
    const inRow = Math.min(perRow, n - row * perRow);
    const w = Math.min(84, Math.floor(392 / inRow) - 8);
    const gap = (400 - inRow * w) / (inRow + 1);
    return { x: gap + (i % perRow) * (w + gap), y: 120 + row * 66, w };
  }

  function build(order, strategy) {
    clear();
    mode = strategy === "consistent" ? "ring" : "row";
    const n = order.length;
    const boxes = n <= MAX_BOXES;
    if (mode === "ring") {
      pic.layers.links.append(svg("circle", { cx: RING.x, cy: RING.y, r: RING.r, fill: "none", stroke: "var(--line)", "stroke-width": 16 }));
    }
    order.forEach((sid, i) => {
      const seg = mode === "ring"
        ? svg("path", { fill: "none", stroke: i % 2 ? "var(--accent)" : "var(--muted)", "stroke-width": 14, opacity: 0.55 })
        : svg("rect", { y: 34, height: 30, fill: i % 2 ? "var(--accent)" : "var(--muted)", opacity: 0.45, stroke: "var(--surface)", "stroke-width": 1 });
      const segLabel = svg("text", { class: "pic-detail", "text-anchor": "middle" });
      pic.layers.links.append(seg);
      pic.layers.labels.append(segLabel);
      let box = null;
      if (boxes) {
        const place = boxPlace(i, n);
        box = node(pic.layers.nodes, { ...place, name: place.w >= 64 ? `${noun} ${sid}` : `s${sid}` });
        pic.action(box.el, () => `Remove ${noun} ${sid}`, () => ctx.command("remove_shard", { shard: sid }));
      } else {
        pic.action(seg, () => `Remove ${noun} ${sid}`, () => ctx.command("remove_shard", { shard: sid }));
      }
      parts[sid] = { seg, segLabel, box };
    });
    if (mode === "row") {
      pic.layers.labels.append(svg("text", { class: "pic-detail", x: 10, y: 28,
        text: strategy === "range" ? `key range 0 … last key, split by ${noun}` : `hash % ${noun}s: the residues, one per ${noun}` }));
    }
    const below = 120 + Math.ceil(Math.min(n, MAX_BOXES) / 8) * 66;
    pic.svg.setAttribute("viewBox", `0 0 400 ${mode === "ring" ? 300 : below + 48}`);
    adder = mode === "ring"
      ? node(pic.layers.nodes, { x: RING.x - 36, y: RING.y - 22, w: 72, h: 44, name: `+ ${noun}` })
      : node(pic.layers.nodes, { x: 306, y: below, w: 88, h: 44, name: `+ ${noun}` });
    adder.update({ state: "add one" });
    pic.action(adder.el, () => `Add ${noun}`, () => ctx.command("add_shard", {}));
  }

  function center(sid) {
    const p = parts[sid];
    if (p && p.box) return p.box.center();
    return mode === "ring" ? { x: RING.x, y: RING.y } : { x: 200, y: 50 };
  }

  function push(frame) {
    const m = frame.metrics || {};
    const pc = frame.picture || {};
    const names = m.shard_names || [];
    const order = pc.order || names.map(sidOf);
    const strategy = pc.strategy || "consistent";
    const key = `${strategy}:${order.join(",")}`;
    if (key !== layoutKey) {
      layoutKey = key;
      build(order, strategy);
    }
    ids = names.map(sidOf);
    const keys = {}, load = {};
    const own = {};
    ids.forEach((sid, i) => {
      keys[sid] = (m.keys_per_shard || [])[i] || 0;
      load[sid] = (m.load_per_shard || [])[i] || 0;
      if (boxDetail) own[sid] = boxDetail(m, i);
    });
    const totalKeys = Object.values(keys).reduce((a, b) => a + b, 0) || 1;
    const maxLoad = Math.max(1e-9, ...Object.values(load));
    const now = performance.now();
    // A command's events reach the page apart from the frames: a re-route shows as
    // a new time of the last move (after a reset or resync, one of the last seconds).
    const rebalanced = pc.moved_at >= 0 && pc.moved_at !== movedAt
      && (movedAt !== null || (frame.t || 0) - pc.moved_at < RECENT_S);
    movedAt = pc.moved_at ?? null;
    if (rebalanced) {
      const to = pc.moved_to || {};
      const from = pc.moved_from || {};
      const total = Object.values(to).reduce((a, b) => a + b, 0);
      moved = { from, to, total };
      movedUntil = now + MOVED_MS;
      // The moved keys, drawn travelling from their old shard to their new one.
      const gainers = Object.entries(to).sort((a, b) => b[1] - a[1]);
      for (const [src, count] of Object.entries(from)) {
        const dest = gainers.length ? gainers[0][0] : null;
        if (dest !== null) pic.dots.send(center(Number(src)), center(Number(dest)), sample(count / 50), "is-miss");
      }
    }
    const showMoved = moved && now < movedUntil;
    let angle = 0;
    let x = 10;
    const hot = pc.hot_shard ?? -1;
    order.forEach((sid) => {
      const p = parts[sid];
      if (!p) return;
      const share = keys[sid] / totalKeys;
      const gained = showMoved ? moved.to[String(sid)] || 0 : 0;
      const lost = showMoved ? moved.from[String(sid)] || 0 : 0;
      if (mode === "ring") {
        const a1 = angle + share * 2 * Math.PI;
        p.seg.setAttribute("d", arcPath(angle, a1));
        const mid = (angle + a1) / 2;
        p.segLabel.setAttribute("x", (RING.x + (RING.r + 20) * Math.sin(mid)).toFixed(1));
        p.segLabel.setAttribute("y", (RING.y - (RING.r + 20) * Math.cos(mid) + 4).toFixed(1));
        angle = a1;
      } else {
        const w = share * 380;
        p.seg.setAttribute("x", x.toFixed(1));
        p.seg.setAttribute("width", Math.max(0, w).toFixed(1));
        p.segLabel.setAttribute("x", (x + w / 2).toFixed(1));
        p.segLabel.setAttribute("y", "54");
        x += w;
      }
      p.seg.setAttribute("stroke-width", mode === "ring" ? (gained ? 20 : 14) : 1);
      p.seg.setAttribute("opacity", gained ? (mode === "ring" ? 0.95 : 0.75) : 0.55);
      p.seg.dataset.moved = gained ? "in" : "";
      // The ring writes the keys a shard gained beside its arc; the bar is too
      // narrow for it (the boxes say it), so it keeps each share.
      p.segLabel.textContent = gained && mode === "ring" ? `+${format(gained)}` : share >= 0.06 ? `${Math.round(share * 100)}%` : "";
      if (p.box) {
        const state = gained && lost === 0 && moved.total === gained ? "new" : sid === hot ? "hot" : "up";
        p.box.update({
          state,
          detail: showMoved && (gained || lost)
            ? `${gained ? "+" : "−"}${format(gained || lost)}${p.box.w >= 64 ? ` ${held}` : ""}`
            : own[sid] ?? `${format(Math.round(load[sid]))}/s`,
          fill: load[sid] / maxLoad,
          highlight: Boolean(gained) || sid === hot,
        });
      }
    });
    // Requests as dots from the clients (the ring's centre, the bar) to the shards.
    const requests = sample(eventCount(frame, "shard.load"));
    const origin = mode === "ring" ? { x: RING.x, y: RING.y } : { x: 200, y: 66 };
    for (let i = 0; i < requests; i++) {
      let pick = Math.random() * Object.values(load).reduce((a, b) => a + b, 0);
      let target = ids[0];
      for (const sid of ids) {
        pick -= load[sid];
        if (pick <= 0) { target = sid; break; }
      }
      if (parts[target] && parts[target].box) pic.dots.send(origin, center(target), 1);
    }
    pic.refreshActions();
    const n = ids.length;
    const busiest = ids.reduce((a, b) => (load[b] > load[a] ? b : a), ids[0]);
    const how = strategy === "consistent" ? "on a hash ring" : strategy === "range" ? "by key range" : "by hash modulo";
    let words = `${n} ${noun}${n === 1 ? "" : "s"} ${how}; busiest ${noun} ${busiest} at ${format(Math.round(load[busiest] || 0))} requests/s.`;
    if (hot >= 0) words += ` Hot key on ${noun} ${hot}.`;
    if (showMoved) words += ` The last resize moved ${format(moved.total)} ${held} (${Math.round((m.moved_fraction || 0) * 100)}%).`;
    if (n > MAX_BOXES) words += ` Click a ${noun}'s share to remove it.`;
    pic.say(words);
  }

  return {
    push,
    reset() {
      layoutKey = "";
      moved = null;
      movedAt = null;
      clear();
      pic.reset();
    },
  };
}
