// Live picture of the prerender engine: visitors are served a pre-rendered copy
// by the CDN (green dots) or a page the backend renders for them (red dots); the
// regeneration job keeps the copies fresh. The grid shows the hottest pages'
// copies, each square marked in words as well as drawn: F fresh, S stale (edited
// since it was rendered), an empty square no copy yet. Clicking a square edits
// that page; clicking the CDN purges it; clicking the visitors starts a spike.
import { Picture, eventCount, format, link, node, sample, svg } from "./common.js";

const ROW_Y = 20;
const BOX_H = 52;
const GRID_X = 12;
const GRID_Y = 172;
const COLS = 20;
const CELL = 16;
const GAP = 3;
const STATE_WORDS = { f: "fresh", s: "stale", "-": "no copy" };

export default function mount(root, ctx) {
  const pic = new Picture(root, ctx, { title: "Visitors, the CDN, the backend and the regeneration job", height: 216 });
  const { links, nodes, labels } = pic.layers;

  const visitors = node(nodes, { x: 4, y: ROW_Y, w: 84, h: BOX_H, name: "Visitors" });
  const cdn = node(nodes, { x: 156, y: ROW_Y, w: 96, h: BOX_H, name: "CDN" });
  const backend = node(nodes, { x: 156, y: ROW_Y + 68, w: 96, h: BOX_H, name: "Backend" });
  const regen = node(nodes, { x: 300, y: ROW_Y + 68, w: 96, h: BOX_H, name: "Regenerator" });
  visitors.el.dataset.role = "visitors";
  cdn.el.dataset.role = "cdn";
  backend.el.dataset.role = "backend";
  regen.el.dataset.role = "regenerator";
  const toCdn = link(links, visitors.right(), cdn.left(), { arrow: pic.arrow });
  const toBackend = link(links, { x: 88, y: ROW_Y + BOX_H - 6 }, backend.left(), { arrow: pic.arrow });
  const regenToBackend = link(links, regen.left(), backend.right(), { arrow: pic.arrow, dashed: true });
  const regenToCdn = link(links, regen.top(), { x: cdn.x + cdn.w, y: ROW_Y + BOX_H / 2 }, { arrow: pic.arrow, dashed: true });
  const copies = svg("text", { class: "pic-detail", x: 300, y: ROW_Y + 20 });
  const ages = svg("text", { class: "pic-detail", x: 300, y: ROW_Y + 36 });
  const gridTitle = svg("text", { class: "pic-detail", x: GRID_X, y: GRID_Y - 7 });
  labels.append(copies, ages, gridTitle);
  const grid = svg("g", { class: "pic-pages", transform: `translate(${GRID_X},${GRID_Y})` });
  nodes.append(grid);
  let cells = [];
  let prerendered = false;

  pic.action(visitors.el, () => "Traffic spike: 5 times the views for 30 s", () => ctx.command("spike", {}));
  pic.action(cdn.el, () => "Purge every page from the CDN", () => ctx.command("purge", { page: -1 }));
  pic.action(regen.el, () => "Publish a change to every page", () => ctx.command("publish", { page: -1 }));

  // One square per hot page, rebuilt only when the number of pages shown changes.
  function buildGrid(count) {
    grid.replaceChildren();
    cells = [];
    for (let i = 0; i < count; i++) {
      const g = svg("g", { class: "pic-node pic-page", transform: `translate(${(i % COLS) * (CELL + GAP)},${Math.floor(i / COLS) * (CELL + GAP)})` });
      const box = svg("rect", { class: "pic-cell", width: CELL, height: CELL, rx: 2 });
      const mark = svg("text", { class: "pic-detail", x: CELL / 2, y: CELL - 4, "text-anchor": "middle" });
      g.append(box, mark);
      g.dataset.page = String(i);
      grid.append(g);
      const cell = { g, box, mark, state: "" };
      pic.action(g, () => `Edit page ${i + 1} (${STATE_WORDS[cell.state] || "no copy"})`, () => ctx.command("publish", { page: i }));
      cells.push(cell);
    }
  }

  function push(frame) {
    const m = frame.metrics || {};
    const p = frame.picture || {};
    const pages = p.pages || "";
    if (pages.length !== cells.length) {
      pic.actions = pic.actions.filter((a) => !a.node.classList.contains("pic-page"));
      buildGrid(pages.length);
    }
    let changed = false;
    for (let i = 0; i < cells.length; i++) {
      const state = pages[i];
      const cell = cells[i];
      if (state === cell.state) continue;
      changed = true;
      cell.state = state;
      cell.g.dataset.state = STATE_WORDS[state] || "no copy";
      cell.box.classList.toggle("is-full", state === "f");
      cell.box.style.fill = state === "s" ? "var(--danger)" : "";
      cell.box.style.stroke = state === "s" ? "var(--danger)" : "";
      cell.mark.textContent = state === "f" ? "F" : state === "s" ? "S" : "";
      cell.mark.style.fill = state === "-" ? "" : "var(--surface)";
    }
    // The pages' labels name their state: "Edit page 3 (stale)".
    if (changed) pic.refreshActions();
    const fresh = p.fresh || 0;
    const outdated = p.outdated || 0;
    const missing = p.no_copy || 0;
    const total = fresh + outdated + missing;
    prerendered = p.mode === "prerendered";
    const cdnPerS = Math.max(0, (m.requests_per_s_recent || 0) - (m.backend_per_s_recent || 0));
    const backendPerS = m.backend_per_s_recent || 0;
    const busy = m.backend_busy || 0;
    const waiting = m.backend_waiting || 0;
    const regenBusy = p.regen_busy || 0;
    const progress = m.regen_progress || 0;

    visitors.update({ state: `${Math.round(m.requests_per_s_recent || 0)}/s`, detail: "page views" });
    cdn.update({
      state: prerendered ? `${Math.round(cdnPerS)}/s` : "unused",
      detail: `${format(fresh + outdated)} copies`,
      fill: total ? (fresh + outdated) / total : 0,
      highlight: prerendered,
    });
    backend.update({
      state: `${busy} busy`,
      detail: waiting ? `${format(waiting)} waiting` : `${Math.round(backendPerS)} renders/s`,
      fill: m.utilization_recent || 0,
    });
    regen.update({
      state: regenBusy || progress > 0 ? "rendering" : prerendered ? "idle" : "off",
      detail: progress > 0 ? `${Math.round(progress * 100)}% done` : `${regenBusy} at work`,
      fill: progress,
    });
    copies.textContent = `${format(fresh)} fresh, ${format(outdated)} stale`;
    ages.textContent = prerendered ? `mean age ${format(m.staleness_s_recent || 0)} s` : "rendered per view";
    gridTitle.textContent = `Hottest ${cells.length} pages: F fresh, S stale, empty no copy`;
    toCdn.update({ label: `${Math.round(cdnPerS)}/s`, active: cdnPerS > 0 });
    toBackend.update({ label: `${Math.round(backendPerS)}/s`, active: backendPerS > 0 });
    regenToBackend.update({ active: regenBusy > 0 });
    regenToCdn.update({ active: regenBusy > 0 });

    const fromCdn = eventCount(frame, "request.cdn");
    const live = eventCount(frame, "request.backend");
    const refused = eventCount(frame, "request.dropped");
    pic.dots.send(visitors.right(), cdn.left(), sample(fromCdn), "is-hit");
    pic.dots.send({ x: 88, y: ROW_Y + BOX_H - 6 }, backend.left(), sample(live), "is-miss");
    pic.dots.send({ x: 88, y: ROW_Y + BOX_H - 6 }, backend.left(), sample(refused), "is-error");
    const renders = eventCount(frame, "render.done");
    if (regenBusy) pic.dots.send(regen.left(), backend.right(), Math.min(2, sample(renders)));

    const served = prerendered
      ? `${format(cdnPerS)} views a second come from the CDN, ${format(backendPerS)} are rendered live`
      : `every view is rendered live by the backend (${format(backendPerS)} a second)`;
    const job = regenBusy || progress > 0
      ? `the regenerator is rendering (${Math.round(progress * 100)}% done)`
      : prerendered ? "the regenerator is idle" : "no regeneration (dynamic mode)";
    pic.say(`${format(fresh)} pages fresh, ${format(outdated)} stale, ${format(missing)} with no copy; ` +
      `${served}; ${busy} backend workers busy${waiting ? `, ${format(waiting)} waiting` : ""}; ${job}.`);
  }

  return {
    push,
    reset() {
      pic.reset();
    },
  };
}
