// The live picture of the whole stack: the clients, then each layer a request
// meets in turn (CDN, balancer, app servers, session store, cache, database, job
// queue), left to right on a wide screen and top to bottom on a narrow one. Each
// layer shows its instances (a down one crossed out), how busy it is, its queue,
// its share of the response time and its cost a month; the bottleneck has a thick
// outline and says so; the cache gives its hit ratio. Layers not in this setup are
// drawn faint and say so. A layer is a button: it fails the layer, or repairs it.
// Requests are dots sampled from the rate, fewer past the CDN (the pages it
// answers itself) and the cache (its hits stop there), none past a layer that is
// down.
import { Picture, format, link, reducedMotion, sample, svg } from "./common.js";

// The chain before the first frame, so that the picture is there to read.
const DEFAULT_LAYERS = [
  ["cdn", "CDN"], ["lb", "Balancer"], ["app", "App servers"], ["session", "Session store"],
  ["cache", "Cache"], ["db", "Database"], ["queue", "Job queue"],
].map(([name, label]) => ({ name, label, instances: 1, up: 1, util: 0, queue: 0, share_ms: 0, cost_month: 0, on: true }));

const MISSING = { cdn: "no CDN yet", lb: "no balancer yet", app: "no app servers", session: "no session store yet",
  cache: "no cache yet", db: "no database", queue: "no job queue yet" };

const GAP = 36; // between two cards, left to right: the links and their dots
const GAP_DOWN = 24; // between two cards, top to bottom
const WIDE = 8 * 110 + 7 * GAP; // narrower than this, the chain runs top to bottom
const CARD_H = 146; // a card, left to right
const ROW_H = 78; // a card, top to bottom
const OFF_ROW_H = 30; // a layer not in this setup, top to bottom
const CLIENTS_ROW_H = 40;
const TAG = 20; // room above a card for the word "bottleneck", left to right
const CELL = 12; // an instance's box
const HOT = 0.85; // utilisation drawn as a warning

// Where each card goes: the clients first, then the layers. `width` is in the
// drawing's units; returns {horizontal, width, height, boxes: [{x, y, w, h}]}.
export function chainLayout(layers, width, { flows = false } = {}) {
  const count = layers.length + 1;
  if (width >= WIDE) {
    const w = (width - 8 - (count - 1) * GAP) / count;
    const boxes = Array.from({ length: count }, (_, i) => ({ x: 4 + i * (w + GAP), y: 4 + TAG, w, h: CARD_H }));
    return { horizontal: true, width, height: 4 + TAG + CARD_H + (flows ? 24 : 8), boxes };
  }
  width = Math.min(width, 560);
  const boxes = [];
  let y = 4;
  for (let i = 0; i < count; i++) {
    const h = i === 0 ? CLIENTS_ROW_H : layers[i - 1].on === false ? OFF_ROW_H : ROW_H;
    boxes.push({ x: 4, y, w: width - 8, h });
    y += h + GAP_DOWN;
  }
  return { horizontal: false, width, height: y - GAP_DOWN + 4, boxes };
}

// "up", "degraded" (some instances down), "down" (none up) or "off" (not in this setup).
export function layerState(layer) {
  if (layer.on === false) return "off";
  const up = Math.max(0, layer.up ?? layer.instances);
  if (up <= 0) return "down";
  return up < layer.instances ? "degraded" : "up";
}

function lower(label) {
  // "Balancer" reads "the balancer"; "CDN" stays as it is.
  return label.length > 1 && label[1] === label[1].toLowerCase() ? label[0].toLowerCase() + label.slice(1) : label;
}

const percent = (util) => `${Math.round((util || 0) * 100)} %`;
const ms = (value) => format(Math.round(value || 0));
const money = (value) => `$${format(Math.round(value || 0))}`;

// The layers' total cost a month: the layers of this setup only.
export function monthlyCost(layers) {
  return layers.filter((l) => l.on !== false).reduce((sum, l) => sum + (l.cost_month || 0), 0);
}

// The picture in words: "50 requests a second, 38 ms on average; the bottleneck is
// the database at 92 %; 3 app servers, cache hit ratio 0.61; $1,240 a month."
export function stackSentence(picture) {
  const layers = picture.layers || [];
  const by = Object.fromEntries(layers.map((l) => [l.name, l]));
  const parts = [`${format(Math.round(picture.rps || 0))} requests a second, ${ms(picture.response_ms)} ms on average`];
  const neck = by[picture.bottleneck];
  if (neck && neck.on !== false) parts.push(`the bottleneck is the ${lower(neck.label)} at ${percent(neck.util)}`);
  const down = [];
  for (const l of layers) {
    const state = layerState(l);
    if (state === "down") down.push(`the ${lower(l.label)} ${/s$/.test(l.label) ? "are" : "is"} down`);
    else if (state === "degraded") down.push(`${l.instances - l.up} of ${l.instances} ${lower(l.label)} down`);
  }
  if (down.length) parts.push(down.join(", "));
  const fleet = [];
  const app = by.app;
  if (app && app.on !== false) fleet.push(`${app.instances} app server${app.instances === 1 ? "" : "s"}`);
  const cdn = by.cdn;
  if (cdn && ["up", "degraded"].includes(layerState(cdn))) fleet.push(`the CDN answers ${percent(cdnShare(picture))}`);
  const cache = by.cache;
  if (cache) fleet.push(cache.on === false ? MISSING.cache : `cache hit ratio ${(picture.hit_ratio || 0).toFixed(2)}`);
  const missing = layers.filter((l) => l.on === false && l.name !== "cache").map((l) => MISSING[l.name] || `no ${lower(l.label)}`);
  parts.push([...fleet, ...missing].join(", "));
  parts.push(`${money(monthlyCost(layers))} a month`);
  return `${parts.filter(Boolean).join("; ")}.`;
}

// The requests a second that reach each layer (null for one not in this setup):
// all of them up to the CDN, less those it answers; less the cache's hits after
// the cache; none past a layer that is down, but a CDN or cache that is down
// sends everything on.
export function reachingRates(picture) {
  let rate = picture.rps || 0;
  return (picture.layers || []).map((layer) => {
    if (layer.on === false) return null;
    const here = rate;
    const s = layerState(layer);
    if (layer.name === "cdn") {
      if (s !== "down") rate = Math.max(0, rate - (picture.cdn_rps || 0));
    } else if (layer.name === "cache") {
      if (s !== "down") rate *= 1 - Math.max(0, Math.min(1, picture.hit_ratio || 0));
    } else if (s === "down") rate = 0;
    return { rate: here, down: s === "down" };
  });
}

// The share of the requests the CDN answers itself, from 0 to 1.
export function cdnShare(picture) {
  return picture.rps > 0 ? Math.max(0, Math.min(1, (picture.cdn_rps || 0) / picture.rps)) : 0;
}

// How the instances are drawn in `slots` boxes: the down ones always shown.
export function instanceBoxes(instances, up, slots) {
  const down = Math.max(0, instances - up);
  if (instances <= slots) return { up: instances - down, down, rest: 0 };
  const shownDown = Math.min(down, slots - 1);
  return { up: slots - 1 - shownDown, down: shownDown, rest: instances - (slots - 1) };
}

// Whether the link into layer `i` touches a layer not in this setup.
function offBeside(layers, i) {
  return layers[i].on === false || (i > 0 && layers[i - 1].on === false);
}

function text(parent, attrs, value = "") {
  const t = svg("text", { ...attrs, text: value });
  parent.append(t);
  return t;
}

// A layer's card: its frame and texts, updated by `update(layer, bottleneck, hitRatio)`.
function card(parent, box, { name, label, horizontal }) {
  const { w, h } = box;
  const group = svg("g", { class: "pic-node pic-layer", transform: `translate(${box.x},${box.y})` });
  group.dataset.layer = name;
  const mark = svg("rect", { x: -5, y: -5, width: w + 10, height: h + 10, rx: 10, fill: "none",
    style: "stroke: var(--danger); stroke-width: 5", visibility: "hidden" });
  const frame = svg("rect", { class: "pic-box", width: w, height: h, rx: 6 });
  const hatch = svg("rect", { class: "pic-hatch", width: w, height: h, rx: 6 });
  group.append(mark, frame, hatch);
  const mid = w / 2;
  const title = text(group, horizontal
    ? { class: "pic-name", x: mid, y: 17, "text-anchor": "middle" }
    : { class: "pic-name", x: 8, y: 17 }, label);
  const tag = svg("g", { visibility: "hidden" });
  const tagW = 78;
  const tagAt = horizontal ? { x: mid - tagW / 2, y: -TAG - 1 } : { x: w - tagW - 6, y: 4 };
  tag.append(
    svg("rect", { x: tagAt.x, y: tagAt.y, width: tagW, height: 17, rx: 8, style: "fill: var(--danger)" }),
    svg("text", { x: tagAt.x + tagW / 2, y: tagAt.y + 13, "text-anchor": "middle", class: "pic-state",
      style: "fill: var(--surface); font-weight: 700", text: "bottleneck" }));
  group.append(tag);
  const state = text(group, horizontal
    ? { class: "pic-state", x: mid, y: 33, "text-anchor": "middle" }
    : { class: "pic-state", x: 8, y: 34 });
  // A layer not in this setup, top to bottom: one line, its name and "no cache yet".
  const missing = text(group, horizontal
    ? { class: "pic-state", x: mid, y: 33, "text-anchor": "middle" }
    : { class: "pic-state", x: w - 8, y: 19, "text-anchor": "end" });
  // Instances: a row of small boxes.
  const cellsAt = horizontal ? { x: 8, y: 42 } : { x: Math.min(130, w * 0.4), y: 24 };
  // Room is kept on the right for "+N".
  const slots = Math.max(2, Math.floor((w - cellsAt.x - (horizontal ? 30 : 40)) / (CELL + 3)));
  const cells = svg("g", { transform: `translate(${cellsAt.x},${cellsAt.y})` });
  const more = text(group, { class: "pic-detail", x: cellsAt.x + slots * (CELL + 3) + 2, y: cellsAt.y + CELL - 1 });
  group.append(cells);
  // Utilisation: a bar and its percentage.
  const barAt = horizontal ? { x: 8, y: 66, w: w - 62 } : { x: 8, y: 44, w: w - 66 };
  const barBack = svg("rect", { class: "pic-cell", x: barAt.x, y: barAt.y, width: barAt.w, height: 10, rx: 2 });
  const bar = svg("rect", { x: barAt.x, y: barAt.y, width: 0, height: 10, rx: 2 });
  group.append(barBack, bar);
  const util = text(group, { class: "pic-state", x: w - 7, y: barAt.y + 10, "text-anchor": "end" });
  const lines = horizontal
    ? [92, 108, 124, 140].map((y) => text(group, { class: "pic-detail", x: 8, y }))
    : [text(group, { class: "pic-detail", x: 8, y: 70 })];
  parent.append(group);

  function update(layer, { bottleneck, hitRatio, cdnAnswers, response }) {
    const s = layerState(layer);
    group.dataset.state = s;
    group.dataset.bottleneck = String(Boolean(bottleneck) && s !== "off");
    group.classList.toggle("is-down", s === "down");
    group.style.opacity = s === "off" ? "0.55" : "";
    frame.setAttribute("stroke-dasharray", s === "off" ? "4 4" : "");
    title.textContent = layer.label;
    mark.setAttribute("visibility", bottleneck && s !== "off" ? "visible" : "hidden");
    tag.setAttribute("visibility", bottleneck && s !== "off" ? "visible" : "hidden");
    const visible = s === "off" ? "hidden" : "visible";
    for (const part of [state, cells, more, barBack, bar, util, ...lines]) part.setAttribute("visibility", visible);
    missing.textContent = s !== "off" ? "" : horizontal ? "not set up" : MISSING[layer.name] || "not in this setup";
    if (s === "off") return;
    const n = layer.instances;
    const up = Math.max(0, Math.min(n, layer.up ?? n));
    state.textContent = s === "down" ? "down" : s === "degraded" ? `${up} of ${n} up` : n === 1 ? "up" : `${n} up`;
    const shown = instanceBoxes(n, up, slots);
    cells.replaceChildren();
    for (let i = 0; i < shown.up + shown.down; i++) {
      const x = i * (CELL + 3);
      const isDown = i >= shown.up;
      cells.append(svg("rect", { class: isDown ? "pic-cell" : "pic-cell is-full", x, y: 0, width: CELL, height: CELL, rx: 2 }));
      if (isDown) {
        const cross = "stroke: var(--danger); stroke-width: 2";
        cells.append(svg("line", { x1: x + 1, y1: 1, x2: x + CELL - 1, y2: CELL - 1, style: cross }),
          svg("line", { x1: x + CELL - 1, y1: 1, x2: x + 1, y2: CELL - 1, style: cross }));
      }
    }
    more.textContent = shown.rest ? `+${format(shown.rest)}` : "";
    more.setAttribute("x", String(cellsAt.x + (shown.up + shown.down) * (CELL + 3) + 2));
    const u = Math.max(0, layer.util || 0);
    bar.setAttribute("width", String(Math.min(1, u) * barAt.w));
    bar.setAttribute("style", u > 1 ? "fill: var(--danger)" : u >= HOT ? "fill: #b35900" : "fill: var(--accent); opacity: 0.7");
    util.textContent = percent(u);
    const q = layer.queue || 0;
    const words = [
      `queue ${q >= 10 ? format(Math.round(q)) : q.toFixed(1).replace(/\.0$/, "")}`,
      `${ms(layer.share_ms)} of ${ms(response)} ms`,
      `${money(layer.cost_month)} a month`,
    ];
    if (layer.name === "cache") words.push(`hit ratio ${(hitRatio || 0).toFixed(2)}`);
    if (layer.name === "cdn") words.unshift(`answers ${percent(cdnAnswers)}`);
    if (horizontal) lines.forEach((line, i) => { line.textContent = words[i] || ""; });
    else lines[0].textContent = words.join(" · ");
  }
  const center = () => ({ x: box.x + w / 2, y: box.y + h / 2 });
  return {
    el: group, box, update,
    from: () => (horizontal ? { x: box.x + w, y: box.y + 40 } : { x: center().x, y: box.y + h }),
    to: () => (horizontal ? { x: box.x, y: box.y + 40 } : { x: center().x, y: box.y }),
  };
}

export default function mount(root, ctx) {
  const reduced = reducedMotion();
  const pic = new Picture(root, ctx, { title: "The whole stack: every layer a request meets, and the slowest one" });
  // The drawing is as wide as its place (in px, scaled up with the page's type, as
  // the projector's is), so that its text keeps the page's size on a phone as on a wall.
  pic.svg.style.maxWidth = "none";
  pic.svg.style.maxHeight = "none";
  let parts = null;
  let drawn = DEFAULT_LAYERS; // the layers the cards were made for
  let shape = "";
  let latest = null;
  let lastT = null;
  let turn = 0;

  // The drawing's width in its units, and how many px a unit takes.
  function measure() {
    const px = pic.figure.clientWidth - 12 || 400;
    const scale = Math.max(1, Math.min(2, parseFloat(getComputedStyle(document.documentElement).fontSize) / 16 || 1));
    return { width: Math.max(300, Math.round(px / scale)), scale };
  }

  function build(layers, { width, scale }) {
    for (const name of ["links", "nodes", "labels"]) pic.layers[name].replaceChildren();
    pic.dots.clear();
    pic.actions = [];
    drawn = layers;
    const geo = chainLayout(layers, width, { flows: reduced });
    pic.width = geo.width;
    pic.height = geo.height;
    pic.svg.setAttribute("viewBox", `0 0 ${geo.width} ${geo.height}`);
    pic.svg.style.maxWidth = geo.horizontal ? "none" : `${geo.width * scale}px`;
    pic.svg.dataset.layout = geo.horizontal ? "across" : "down";
    const { links, nodes, labels } = pic.layers;
    const clientsBox = geo.boxes[0];
    const clients = svg("g", { class: "pic-node", transform: `translate(${clientsBox.x},${clientsBox.y})` });
    clients.dataset.layer = "clients";
    clients.append(svg("rect", { class: "pic-box", width: clientsBox.w, height: clientsBox.h, rx: 6 }));
    const cx = geo.horizontal ? clientsBox.w / 2 : 8;
    const anchor = geo.horizontal ? "middle" : "start";
    text(clients, { class: "pic-name", x: cx, y: 17, "text-anchor": anchor }, "Clients");
    const clientRate = text(clients, geo.horizontal
      ? { class: "pic-state", x: cx, y: 33, "text-anchor": anchor }
      : { class: "pic-state", x: clientsBox.w - 8, y: 17, "text-anchor": "end" });
    const clientTime = text(clients, geo.horizontal
      ? { class: "pic-detail", x: cx, y: 49, "text-anchor": anchor }
      : { class: "pic-detail", x: clientsBox.w - 8, y: 32, "text-anchor": "end" });
    nodes.append(clients);
    const clientsEnd = geo.horizontal
      ? { x: clientsBox.x + clientsBox.w, y: clientsBox.y + 40 }
      : { x: clientsBox.x + clientsBox.w / 2, y: clientsBox.y + clientsBox.h };
    const cards = layers.map((layer, i) => card(nodes, geo.boxes[i + 1], { ...layer, horizontal: geo.horizontal }));
    const lines = [];
    let from = clientsEnd;
    cards.forEach((c, i) => {
      lines.push(link(links, from, c.to(), { arrow: pic.arrow, dashed: offBeside(layers, i) }));
      from = c.from();
    });
    // Under reduced motion, the requests a second that reach each layer, written
    // under its link (left to right) or beside it (top to bottom).
    const flows = cards.map((c) => {
      if (!reduced) return null;
      const at = geo.horizontal
        ? { x: c.box.x - GAP / 2, y: geo.height - 8, "text-anchor": "middle" }
        : { x: c.box.x + c.box.w / 2 + 8, y: c.box.y - GAP_DOWN / 2 + 4 };
      return text(labels, { class: "pic-detail pic-link-label", ...at });
    });
    cards.forEach((c, i) => {
      const name = layers[i].name;
      c.el.dataset.role = "layer";
      if (layers[i].on === false) return;
      pic.action(c.el, () => actionLabel(name), () => {
        const layer = current(name);
        ctx.command(layer && layerState(layer) !== "up" ? "repair" : "fail", { layer: name });
      });
    });
    parts = { clients: { rate: clientRate, time: clientTime, end: clientsEnd }, cards, lines, flows };
  }

  function current(name) {
    const layers = (latest && latest.layers) || drawn;
    return layers.find((l) => l.name === name);
  }

  function actionLabel(name) {
    const layer = current(name);
    if (!layer) return name;
    const what = lower(layer.label);
    const down = layer.instances - layer.up;
    if (layerState(layer) === "up") return layer.instances > 1 ? `Fail one instance of the ${what}` : `Fail the ${what}`;
    return layer.instances > 1 ? `Repair the ${what} (${down} of ${layer.instances} down)` : `Repair the ${what}`;
  }

  function redraw(layers) {
    const size = measure();
    const key = `${size.width}|${layers.map((l) => `${l.name}:${l.label}:${l.on !== false}`).join(",")}`;
    if (key === shape) return;
    shape = key;
    build(layers, size);
  }

  function draw(p) {
    const layers = p.layers;
    parts.clients.rate.textContent = `${format(Math.round(p.rps || 0))} req/s`;
    parts.clients.time.textContent = `${ms(p.response_ms)} ms on average`;
    const cdnAnswers = cdnShare(p);
    layers.forEach((layer, i) => {
      parts.cards[i].update(layer, {
        bottleneck: p.bottleneck === layer.name, hitRatio: p.hit_ratio, cdnAnswers, response: p.response_ms,
      });
      parts.lines[i].update({ dashed: offBeside(layers, i) });
    });
  }

  function flow(p, dt) {
    const rates = reachingRates(p);
    const hops = [];
    let from = parts.clients.end;
    rates.forEach((r, i) => {
      if (!r) return;
      hops.push({ from, to: parts.cards[i].to(), rate: r.rate, down: r.down, i });
      from = parts.cards[i].from();
    });
    // The first hop does not always go first: the screen's 60 dots are shared.
    const start = turn++ % Math.max(1, hops.length);
    for (let k = 0; k < hops.length; k++) {
      const h = hops[(start + k) % hops.length];
      pic.dots.send(h.from, h.to, Math.min(2, sample(h.rate * dt)), h.down ? "is-error" : "");
    }
    if (reduced) {
      rates.forEach((r, i) => {
        if (parts.flows[i]) parts.flows[i].textContent = r ? `${format(Math.round(r.rate))}/s` : "";
      });
    }
  }

  function push(frame) {
    const p = frame.picture;
    if (!p || !Array.isArray(p.layers)) return;
    latest = p;
    redraw(p.layers);
    draw(p);
    const t = Number(frame.t) || 0;
    const dt = lastT === null || t < lastT ? 0.1 : Math.min(1, t - lastT);
    lastT = t;
    flow(p, dt);
    pic.refreshActions();
    pic.say(stackSentence(p));
  }

  redraw(DEFAULT_LAYERS);
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(() => {
      const layers = latest ? latest.layers : DEFAULT_LAYERS;
      const before = shape;
      redraw(layers);
      if (shape !== before && latest) draw(latest);
      pic.refreshActions();
    }).observe(pic.figure);
  }

  return {
    push,
    reset() {
      latest = null;
      lastT = null;
      pic.reset();
      shape = "";
      redraw(DEFAULT_LAYERS);
    },
  };
}
