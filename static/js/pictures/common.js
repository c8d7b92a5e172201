// Building blocks of the live pictures: each engine's system drawn in SVG from its frames.
//
// A picture module exports `mount(root, ctx)` and returns {push(frame), reset()},
// as a chart module does. The panel's ctx holds:
//   engine        the engine's declaration (params, commands, metrics)
//   command(name, args)  sends a command of the engine, as its button does
//   canControl()  whether this visitor may send commands (the run's owner, running)
//   paused()      whether the run is paused (dots stand still)
//   speed()       the run's speed (dots move faster at 4x)
//
// A picture is told in words too: `say()` writes a sentence of its state under it
// at most once a second. No state is shown by colour alone: every component
// writes its state, and a down one is also drawn dashed and hatched.
// Requests are dots sampled from the frames' counts, at most MAX_DOTS on screen,
// reused from a pool; with prefers-reduced-motion there are none, and the flows
// write their counts instead.

import { el } from "../dom.js";
import { format } from "../values.js";

export const NS = "http://www.w3.org/2000/svg";
export const MAX_DOTS = 60;
const DOT_MS = 900; // a dot's trip at 1x speed
const WORDS_EVERY_MS = 1000;

// An SVG element: svg("rect", {x: 1, class: "pic-box"}, child, "text"...).
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function reducedMotion() {
  return typeof matchMedia === "function" && matchMedia("(prefers-reduced-motion: reduce)").matches;
}

let pictures = 0;

// The figure: a title, the SVG, and the sentence that describes it.
export class Picture {
  constructor(root, ctx, { title, width = 400, height = 240 }) {
    const id = `picture-${++pictures}`;
    this.ctx = ctx;
    this.width = width;
    this.height = height;
    this.svg = svg("svg", {
      viewBox: `0 0 ${width} ${height}`, class: "picture-svg", role: "group",
      "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-words`,
    });
    this.svg.append(svg("defs", {},
      svg("pattern", { id: `${id}-hatch`, width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
        svg("line", { x1: 0, y1: 0, x2: 0, y2: 8, class: "pic-hatch-line" })),
      svg("marker", { id: `${id}-arrow`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "pic-arrow-head" }))));
    this.hatch = `url(#${id}-hatch)`;
    this.svg.style.setProperty("--pic-hatch", this.hatch);
    this.arrow = `url(#${id}-arrow)`;
    this.layers = {};
    for (const name of ["links", "nodes", "dots", "labels"]) this.layer(name);
    this.words = el("p", { class: "picture-words", id: `${id}-words`, text: "No data yet: press Run." });
    this.title = el("figcaption", { class: "picture-title", id: `${id}-title`, text: title });
    this.figure = el("figure", { class: "picture" }, this.title, this.svg, this.words);
    root.append(this.figure);
    this.actions = [];
    this.dots = new Dots(this.layers.dots, ctx);
    this.pending = null;
    this.lastWords = -Infinity;
    this.timer = null;
    // The panel says when who may control the run, or whether it runs, changes.
    if (ctx.root) ctx.root.addEventListener("scalelab:control", () => this.refreshActions());
  }

  layer(name) {
    if (!this.layers[name]) {
      this.layers[name] = svg("g", { class: `pic-layer-${name}` });
      this.svg.append(this.layers[name]);
    }
    return this.layers[name];
  }

  // Write the sentence of the latest state, at most once a second; the last one
  // is always written, so that a pause shows the state it paused in.
  say(text) {
    this.pending = text;
    const wait = WORDS_EVERY_MS - (performance.now() - this.lastWords);
    if (wait <= 0) this.writeWords();
    else if (!this.timer) this.timer = setTimeout(() => this.writeWords(), wait);
  }

  writeWords() {
    clearTimeout(this.timer);
    this.timer = null;
    this.lastWords = performance.now();
    if (this.pending !== null) this.words.textContent = this.pending;
  }

  // Make `node` a button that injects a fault: clicked, or focused and activated
  // with Enter or Space. Only the run's owner, while it runs, may use it; anyone
  // else is told why. `label` is a function of nothing, read each time (the
  // label follows the state: "Kill server 2" becomes "Restart server 2").
  action(node, label, activate) {
    node.classList.add("pic-action");
    node.setAttribute("role", "button");
    node.setAttribute("tabindex", "0");
    const entry = { node, label };
    const go = (event) => {
      event.preventDefault();
      if (!this.ctx.canControl()) {
        this.ctx.refuse && this.ctx.refuse("Press Run first: the picture's components act on your running simulation.");
        return;
      }
      activate();
    };
    node.addEventListener("click", go);
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") go(event);
    });
    this.actions.push(entry);
    this.refreshActions();
    return node;
  }

  refreshActions() {
    const allowed = this.ctx.canControl();
    for (const { node, label } of this.actions) {
      const text = typeof label === "function" ? label() : label;
      node.setAttribute("aria-label", text);
      node.setAttribute("aria-disabled", allowed ? "false" : "true");
      let tip = node.querySelector(":scope > title");
      if (!tip) node.prepend((tip = svg("title")));
      tip.textContent = text;
    }
  }

  // Forget the run: no dots, a waiting sentence. Modules redraw their parts.
  reset() {
    this.dots.clear();
    clearTimeout(this.timer);
    this.timer = null;
    this.pending = null;
    this.words.textContent = "No data yet: press Run.";
  }
}

// A component: a box with a name, its state in words, and an optional detail
// line and fill meter. States: up, down, busy, idle, warn, standby, stale,
// fresh, paused, rebuilding (any word works; these have styles).
export function node(parent, { x, y, w = 80, h = 52, name = "", shape = "rect" }) {
  const group = svg("g", { class: "pic-node", transform: `translate(${x},${y})` });
  const box = shape === "disk"
    ? svg("rect", { class: "pic-box", width: w, height: h, rx: w / 2 > h ? 8 : 12 })
    : svg("rect", { class: "pic-box", width: w, height: h, rx: 6 });
  const hatch = svg("rect", { class: "pic-hatch", width: w, height: h, rx: 6 });
  const meter = svg("rect", { class: "pic-meter", x: 0, y: h - 6, width: 0, height: 6, rx: 2 });
  const title = svg("text", { class: "pic-name", x: w / 2, y: 17, "text-anchor": "middle", text: name });
  const state = svg("text", { class: "pic-state", x: w / 2, y: 33, "text-anchor": "middle" });
  const detail = svg("text", { class: "pic-detail", x: w / 2, y: 47, "text-anchor": "middle" });
  group.append(box, hatch, meter, title, state, detail);
  parent.append(group);
  const handle = {
    el: group, x, y, w, h,
    center: () => ({ x: x + w / 2, y: y + h / 2 }),
    left: () => ({ x, y: y + h / 2 }),
    right: () => ({ x: x + w, y: y + h / 2 }),
    top: () => ({ x: x + w / 2, y }),
    bottom: () => ({ x: x + w / 2, y: y + h }),
    update({ name: n, state: s, detail: d, fill, down, highlight } = {}) {
      if (n !== undefined) title.textContent = n;
      if (s !== undefined) {
        state.textContent = s;
        group.dataset.state = s;
      }
      if (d !== undefined) detail.textContent = d;
      if (fill !== undefined) meter.setAttribute("width", String(Math.max(0, Math.min(1, fill || 0)) * w));
      group.classList.toggle("is-down", Boolean(down));
      group.classList.toggle("is-highlight", Boolean(highlight));
      return handle;
    },
  };
  return handle;
}

// A queue: up to `slots` squares filled from the left, and "+N" for the rest.
export function queue(parent, { x, y, slots = 10, size = 12, gap = 3, label = "" }) {
  const group = svg("g", { class: "pic-queue", transform: `translate(${x},${y})` });
  const cells = [];
  for (let i = 0; i < slots; i++) {
    const cell = svg("rect", { class: "pic-cell", x: i * (size + gap), y: 0, width: size, height: size, rx: 2 });
    cells.push(cell);
    group.append(cell);
  }
  const more = svg("text", { class: "pic-detail", x: slots * (size + gap) + 4, y: size - 1 });
  const caption = svg("text", { class: "pic-detail", x: 0, y: -5, text: label });
  group.append(more, caption);
  parent.append(group);
  return {
    el: group,
    update(count, text) {
      const n = Math.max(0, Math.round(count || 0));
      cells.forEach((cell, i) => cell.classList.toggle("is-full", i < n));
      more.textContent = n > slots ? `+${format(n - slots)}` : "";
      if (text !== undefined) caption.textContent = text;
      group.dataset.count = String(n);
    },
  };
}

// A link between two points, with a count written at its middle when motion is
// reduced (or always, with `always`).
export function link(parent, from, to, { label = "", arrow = "", dashed = false, cls = "" } = {}) {
  const line = svg("line", { class: `pic-link ${cls}`.trim(), x1: from.x, y1: from.y, x2: to.x, y2: to.y,
    "marker-end": arrow || undefined, "stroke-dasharray": dashed ? "5 4" : undefined });
  const text = svg("text", { class: "pic-detail pic-link-label", x: (from.x + to.x) / 2, y: (from.y + to.y) / 2 - 4, "text-anchor": "middle", text: label });
  parent.append(line, text);
  return {
    el: line,
    from, to,
    update({ label: l, dashed: d, active } = {}) {
      if (l !== undefined) text.textContent = l;
      if (d !== undefined) line.setAttribute("stroke-dasharray", d ? "5 4" : "none");
      if (active !== undefined) line.classList.toggle("is-active", Boolean(active));
    },
  };
}

// Requests as dots along straight paths. `send(from, to, count)` starts up to
// `count` dots (fewer when the screen already holds MAX_DOTS): the dots are a
// sample of the traffic, never one per request. They stand still while the run
// is paused and go faster with its speed; with reduced motion there are none.
export class Dots {
  constructor(layer, ctx = {}) {
    this.layer = layer;
    this.ctx = ctx;
    this.pool = [];
    this.live = [];
    this.last = 0;
    this.running = false;
    this.reduced = reducedMotion();
  }

  send(from, to, count = 1, cls = "") {
    if (this.reduced || !from || !to) return 0;
    const free = MAX_DOTS - this.live.length;
    const n = Math.max(0, Math.min(Math.round(count), free, 8));
    for (let i = 0; i < n; i++) {
      const dot = this.pool.pop() || svg("circle", { r: 4 });
      dot.setAttribute("class", `pic-dot ${cls}`.trim());
      this.layer.append(dot);
      // Spread the dots of one frame along the first part of the path.
      this.live.push({ dot, from, to, p: -i / Math.max(n, 1) * 0.3 });
    }
    if (n && !this.running) {
      this.running = true;
      this.last = performance.now();
      requestAnimationFrame((now) => this.step(now));
    }
    return n;
  }

  step(now) {
    const dt = now - this.last;
    this.last = now;
    const paused = this.ctx.paused ? this.ctx.paused() : false;
    const speed = Math.max(0.25, Math.min(8, (this.ctx.speed && this.ctx.speed()) || 1));
    if (!paused) {
      const advance = (dt * Math.sqrt(speed)) / DOT_MS;
      for (const d of this.live) d.p += advance;
      const done = this.live.filter((d) => d.p >= 1);
      if (done.length) {
        for (const d of done) {
          d.dot.remove();
          this.pool.push(d.dot);
        }
        this.live = this.live.filter((d) => d.p < 1);
      }
      for (const d of this.live) {
        const p = Math.max(0, d.p);
        d.dot.setAttribute("cx", String(d.from.x + (d.to.x - d.from.x) * p));
        d.dot.setAttribute("cy", String(d.from.y + (d.to.y - d.from.y) * p));
        d.dot.style.opacity = d.p < 0 ? "0" : "1";
      }
    }
    if (this.live.length) requestAnimationFrame((t) => this.step(t));
    else this.running = false;
  }

  count() {
    return this.live.length;
  }

  clear() {
    for (const d of this.live) {
      d.dot.remove();
      this.pool.push(d.dot);
    }
    this.live = [];
  }
}

// A fleet of like boxes in rows under a balancer (deploy, provisioning, sessions,
// balancer), in three steps:
//   fleetNames(names, most)   the names to draw, at most `most` boxes: past that
//                             the last box stands for the rest ({shown, rest})
//   fleetGrid(count, {top})   where box k goes ({cols, w, rows, at(k)}): four to a
//                             row for a small fleet (wide enough for their words),
//                             six for more, across the 392 units from x = 4; or
//                             `cols`, `w`, `gap` and `rowH` as given
//   fleetBoxes(layer, grid, shown, rest, each)  a box per name, handed to
//                             each(box, name, k) for its link and action, and with
//                             `rest` a last, nameless box ({boxes, restBox})
// fanOut(balancer, col, cols) is where the link to column `col` leaves the
// balancer, moreBox(restBox, others, words) writes "+N more" in the last box,
// fleetPicture makes or clears the picture for a layout, redrawOnChange draws
// one only when it changes, serverNumber reads "s3" as 3 and serverUp reads a
// server's state from a frame.
export const FLEET_BOX_H = 52;

export function fleetNames(names, most) {
  const shown = names.length > most ? names.slice(0, most - 1) : names.slice();
  return { shown, rest: names.length - shown.length };
}

export function fleetGrid(count, { top = 0, cols, w, gap = 4, rowH = FLEET_BOX_H + 8 } = {}) {
  if (!cols) {
    cols = count <= 4 ? 4 : 6;
    w = (392 - (cols - 1) * gap) / cols;
  }
  return {
    cols, w,
    rows: Math.ceil(count / cols),
    at: (k) => ({ x: 4 + (k % cols) * (w + gap), y: top + Math.floor(k / cols) * rowH }),
  };
}

export function fleetBoxes(layer, grid, shown, rest, each, h = FLEET_BOX_H) {
  const boxes = shown.map((name, k) => each(node(layer, { ...grid.at(k), w: grid.w, h, name }), name, k));
  const restBox = rest ? node(layer, { ...grid.at(shown.length), w: grid.w, h, name: "" }) : null;
  return { boxes, restBox };
}

// Spread along the balancer's bottom, so that the counts written on the links
// (reduced motion) stand apart.
export function fanOut(balancer, col, cols) {
  return { x: balancer.x + 8 + ((col + 0.5) * (balancer.w - 16)) / cols, y: balancer.y + balancer.h };
}

// The last box of a fleet: "+N more", and the state and detail `words(others)` gives.
export function moreBox(restBox, others, words) {
  if (restBox) restBox.update({ name: `+${others.length} more`, detail: "", ...words(others) });
}

// Redraw a picture only when its layout changes: `redraw(key, ...args)` calls
// build(...args) the first time, and whenever `key` differs from the last one.
export function redrawOnChange(build) {
  let last = null;
  return (key, ...args) => {
    if (key === last) return;
    build(...args);
    last = key;
  };
}

// The number of server `name`: "s3" is 3.
export function serverNumber(name) {
  return Number(String(name).replace(/^s/, ""));
}

// Whether server `name` is up in `frame` (its metrics server_names and server_up):
// up before the first frame, and when the frame does not name it.
export function serverUp(frame, name) {
  if (!frame) return true;
  const i = (frame.metrics.server_names || []).indexOf(name);
  return i < 0 || Boolean(frame.metrics.server_up[i]);
}

// The picture of a fleet, made on the first call and redrawn for a new layout:
// `height` tall, with no links, nodes, labels, dots or actions left.
export function fleetPicture(pic, root, ctx, { title, height }) {
  if (!pic) pic = new Picture(root, ctx, { title, height });
  pic.height = height;
  pic.svg.setAttribute("viewBox", `0 0 ${pic.width} ${height}`);
  for (const name of ["links", "nodes", "labels"]) pic.layers[name].replaceChildren();
  pic.dots.clear();
  pic.actions = [];
  return pic;
}

// How many of `total` to draw this frame: a rate, per frame, becomes dots.
export function sample(count) {
  const n = Number(count) || 0;
  if (n <= 0) return 0;
  return n <= 3 ? Math.round(n) : Math.min(8, Math.ceil(Math.log2(n + 1)));
}

// The count of an event type in a frame (events folded into {type, count}).
export function eventCount(frame, type) {
  let n = 0;
  for (const e of frame.events || []) if (e.type === type) n += "count" in e ? e.count : 1;
  return n;
}

export { format };
