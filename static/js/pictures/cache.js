// Live picture of the cache engine: clients ask the app, the app looks in the
// cache and, on a miss (or while the cache is down), reads the database. Hits are
// small green dots that stop at the cache; misses are larger red dots that go on
// from it to the database. The strip below shows which keys are cached, from
// the hottest to the coldest (ranks spaced on a log scale).
import { Picture, eventCount, format, link, node, sample, svg } from "./common.js";

const ROW_Y = 26;
const BOX_H = 52;
const STRIP_Y = 128;
const CELL = 12;
const CELL_GAP = 3;
const HIT_R = 3.5;
const MISS_R = 5.5;

function percent(x) {
  return `${Math.round((x || 0) * 100)}%`;
}

export default function mount(root, ctx) {
  const pic = new Picture(root, ctx, { title: "Clients, the app, its cache and the database", height: 170 });
  const { links, nodes, labels } = pic.layers;

  const clients = node(nodes, { x: 2, y: ROW_Y, w: 64, h: BOX_H, name: "Clients" });
  const app = node(nodes, { x: 101, y: ROW_Y, w: 62, h: BOX_H, name: "App" });
  const cache = node(nodes, { x: 198, y: ROW_Y, w: 94, h: BOX_H, name: "Cache" });
  const db = node(nodes, { x: 326, y: ROW_Y, w: 70, h: BOX_H, name: "Database" });
  cache.el.dataset.role = "cache";
  db.el.dataset.role = "database";
  clients.el.dataset.role = "clients";
  const toApp = link(links, clients.right(), app.left(), { arrow: pic.arrow });
  const toCache = link(links, app.right(), cache.left(), { arrow: pic.arrow });
  const toDb = link(links, cache.right(), db.left(), { arrow: pic.arrow });
  const entries = svg("text", { class: "pic-detail", x: 245, y: ROW_Y + BOX_H + 15, "text-anchor": "middle" });
  const dirty = svg("text", { class: "pic-detail", x: 245, y: ROW_Y + BOX_H + 29, "text-anchor": "middle" });
  const legend = svg("text", { class: "pic-detail", x: 2, y: ROW_Y - 8,
    text: "small green dots: hits; large red ones: misses, on to the database" });
  const stripTitle = svg("text", { class: "pic-detail", x: 20, y: STRIP_Y - 7 });
  const stripHot = svg("text", { class: "pic-detail", x: 20, y: STRIP_Y + CELL + 15, text: "hottest key" });
  const stripCold = svg("text", { class: "pic-detail", x: 380, y: STRIP_Y + CELL + 15, "text-anchor": "end" });
  labels.append(entries, dirty, legend, stripTitle, stripHot, stripCold);
  const strip = svg("g", { class: "pic-keys", transform: `translate(20,${STRIP_Y})` });
  nodes.append(strip);
  let cells = [];
  let up = true;

  pic.action(cache.el, () => (up ? "Crash the cache" : "Restart the cache"),
    () => ctx.command(up ? "crash" : "restart", {}));
  pic.action(clients.el, () => "Send a burst of 2,000 writes", () => ctx.command("write_burst", {}));

  // One square per hot key; rebuilt only when the number of keys shown changes.
  function buildStrip(count) {
    strip.replaceChildren();
    cells = [];
    for (let i = 0; i < count; i++) {
      const cell = svg("rect", { class: "pic-cell", x: i * (CELL + CELL_GAP), y: 0, width: CELL, height: CELL, rx: 2 });
      cells.push(cell);
      strip.append(cell);
    }
  }

  // Start dots and give the ones just started the radius of their kind.
  function send(from, to, count, cls, r) {
    const n = pic.dots.send(from, to, count, cls);
    for (const d of pic.dots.live.slice(pic.dots.live.length - n)) d.dot.setAttribute("r", String(r));
  }

  function push(frame) {
    const m = frame.metrics || {};
    const p = frame.picture || {};
    up = m.cache_up !== 0;
    const hot = p.hot || "";
    if (hot.length !== cells.length) buildStrip(hot.length);
    let hotCached = 0;
    for (let i = 0; i < cells.length; i++) {
      const cached = hot[i] === "1";
      if (cached) hotCached++;
      cells[i].classList.toggle("is-full", cached);
    }
    const capacity = p.capacity || 0;
    const occupancy = m.occupancy || 0;
    const hitsPerS = m.hits_per_s_recent || 0;
    const missesPerS = m.misses_per_s_recent || 0;
    const dbPerS = m.db_reads_per_s_recent || 0;
    const warming = up && m.warm_progress > 0 && m.warm_progress < 1;
    const state = !up ? "down" : warming ? "warming" : "up";

    clients.update({ state: `${Math.round(hitsPerS + missesPerS)}/s`, detail: "reads" });
    app.update({ state: `${format(m.latency_ms_recent || 0)} ms`, detail: "a read" });
    cache.update({
      state,
      detail: up ? `hit ${percent(m.hit_ratio_recent)}` : "reads bypass it",
      fill: capacity ? occupancy / capacity : 0,
      down: !up,
    });
    db.update({ state: `${Math.round(dbPerS)}/s`, detail: "reads", highlight: !up });
    entries.textContent = `${format(occupancy)} of ${format(capacity)} entries`;
    dirty.textContent = m.dirty ? `${format(m.dirty)} unflushed writes` : "";
    stripTitle.textContent = `${cells.length} keys from hottest to coldest: ${hotCached} cached (filled)`;
    stripCold.textContent = `coldest, #${format(p.keys || 0)}`;
    toApp.update({ label: `${Math.round(hitsPerS + missesPerS)}/s`, active: hitsPerS + missesPerS > 0 });
    toCache.update({ label: up ? `${Math.round(hitsPerS)}/s` : "", dashed: !up });
    toDb.update({ label: `${Math.round(missesPerS)}/s`, active: missesPerS > 0 });

    const hits = eventCount(frame, "cache.hit");
    const misses = eventCount(frame, "cache.miss");
    pic.dots.send(clients.right(), app.left(), sample(hits + misses));
    // A miss is drawn twice: to the cache, which has not got the key, and on from
    // it to the database; no dot crosses the cache's words.
    send(app.right(), cache.left(), sample(hits), "is-hit", HIT_R);
    send(app.right(), cache.left(), sample(misses), "is-miss", MISS_R);
    send(cache.right(), db.left(), sample(misses), "is-miss", MISS_R);

    const words = up
      ? `Cache ${state}: ${percent(m.hit_ratio_recent)} of reads hit it over the last 3 s; ` +
        `${format(occupancy)} of ${format(capacity)} entries; ${hotCached} of the ${cells.length} keys drawn cached; ` +
        `${format(dbPerS)} reads a second go to the database.`
      : `Cache down: every read goes to the database (${format(dbPerS)} reads a second); ` +
        `${format(occupancy)} entries kept for the restart.`;
    pic.say(m.dirty ? `${words} ${format(m.dirty)} writes not yet flushed.` : words);
    pic.refreshActions();
  }

  return {
    push,
    reset() {
      pic.reset();
      up = true;
      pic.refreshActions();
    },
  };
}
