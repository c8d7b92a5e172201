// Live picture of the RAID engine: the disks as columns of stripes with their data
// (D), parity (P) and second parity (Q) blocks, failed disks hatched, a rebuild
// sweeping down the replacement disk, and I/Os as dots from the host to the disks.
import { Picture, eventCount, format, node, sample, svg } from "./common.js";

const STATE_WORDS = { ok: "ok", failed: "failed", rebuilding: "rebuild" };
const PER_ROW = 8;
const TOP = 48; // below the host

export default function mount(root, ctx) {
  const pic = new Picture(root, ctx, { title: "Disks, stripes and the rebuild", height: 300 });
  let layoutKey = "";
  let disks = [];
  let host = null;

  function build(n, stripes) {
    for (const name of ["links", "nodes", "labels"]) pic.layers[name].replaceChildren();
    pic.actions = [];
    disks = [];
    const rows = Math.ceil(n / PER_ROW);
    const shown = rows === 1 ? 4 : rows === 2 ? 3 : 2;
    const perRow = Math.min(n, PER_ROW);
    const w = Math.min(74, (392 - 4 * perRow) / perRow);
    const block = 17;
    const rowHeight = 52 + shown * block + 10;
    const height = Math.min(320, TOP + rows * rowHeight);
    pic.svg.setAttribute("viewBox", `0 0 400 ${height}`);
    host = node(pic.layers.nodes, { x: 150, y: 2, w: 100, h: 40, name: "host" });
    for (let d = 0; d < n; d++) {
      const row = Math.floor(d / PER_ROW);
      const col = d % PER_ROW;
      const inRow = Math.min(PER_ROW, n - row * PER_ROW);
      const left = (400 - inRow * (w + 4)) / 2 + 2;
      const x = left + col * (w + 4);
      const y = TOP + row * rowHeight;
      const box = node(pic.layers.nodes, { x, y, w, h: 52, name: w >= 56 ? `disk ${d}` : `d${d}` });
      const cells = [];
      const column = svg("g", { class: "pic-stripes", "data-disk": d });
      for (let s = 0; s < Math.min(shown, stripes.length); s++) {
        const cy = y + 56 + s * block;
        const rect = svg("rect", { x, y: cy, width: w, height: block - 2, rx: 2, fill: "var(--surface)", stroke: "var(--muted)", "stroke-width": 1 });
        const text = svg("text", { class: "pic-detail", x: x + w / 2, y: cy + 12, "text-anchor": "middle" });
        column.append(rect, text);
        cells.push({ rect, text });
      }
      const blocksTop = y + 56;
      const blocksHeight = cells.length * block - 2;
      const hatch = svg("rect", { x, y: blocksTop, width: w, height: blocksHeight, fill: pic.hatch, opacity: 0, "pointer-events": "none" });
      const sweep = svg("rect", { x, y: blocksTop, width: w, height: 0, fill: "var(--accent)", opacity: 0.35, "pointer-events": "none" });
      column.append(hatch, sweep);
      pic.layers.links.append(column);
      const entry = { box, cells, hatch, sweep, blocksTop, blocksHeight, state: "ok" };
      pic.action(box.el,
        () => (entry.state === "failed" ? `Replace disk ${d}` : `Fail disk ${d}`),
        () => ctx.command(entry.state === "failed" ? "replace_disk" : "fail_disk", { disk: d }));
      disks.push(entry);
    }
  }

  function push(frame) {
    const m = frame.metrics || {};
    const pc = frame.picture || {};
    const states = m.disk_states || [];
    const stripes = pc.stripes || [];
    const n = states.length;
    const key = `${pc.level}:${n}`;
    if (key !== layoutKey) {
      layoutKey = key;
      build(n, stripes);
    }
    const rebuild = pc.rebuild || {};
    const util = m.disk_utilisation || [];
    const narrow = disks.length && disks[0].box.w < 40;
    disks.forEach((entry, d) => {
      const state = states[d] || "ok";
      entry.state = state;
      const progress = rebuild[String(d)];
      entry.box.update({
        state: STATE_WORDS[state] || state,
        detail: state === "rebuilding" && progress !== undefined
          ? `${Math.round(progress * 100)}%`
          : state === "failed" ? "" : `${Math.round((util[d] || 0) * 100)}% busy`,
        fill: state === "ok" ? util[d] || 0 : 0,
        down: state === "failed",
        highlight: state === "rebuilding",
      });
      const words = (stripes[0] !== undefined ? stripes : []).map((row) => row.split(" ")[d] || "");
      entry.cells.forEach((cell, s) => {
        const word = words[s] || "";
        const parity = word === "P" || word === "Q";
        cell.text.textContent = narrow ? word.slice(0, 1) : word;
        cell.rect.setAttribute("fill", parity ? "var(--line)" : "var(--surface)");
      });
      entry.hatch.setAttribute("opacity", state === "failed" ? 0.6 : 0);
      // The rebuild sweeps down the replacement disk as it rewrites it.
      entry.sweep.setAttribute("height", state === "rebuilding" ? String((progress || 0) * entry.blocksHeight) : "0");
    });
    // I/Os as dots from the host to the disks, more to the busier disks.
    const ios = sample(eventCount(frame, "raid.io"));
    const total = util.reduce((a, b) => a + b, 0);
    for (let i = 0; i < ios && total > 0; i++) {
      let pick = Math.random() * total;
      let target = 0;
      for (let d = 0; d < util.length; d++) {
        pick -= util[d];
        if (pick <= 0) { target = d; break; }
      }
      if (disks[target]) pic.dots.send(host.bottom(), disks[target].box.top(), 1);
    }
    host.update({ state: m.state || "", detail: "" });
    pic.refreshActions();
    const failed = states.map((s, d) => (s === "failed" ? d : -1)).filter((d) => d >= 0);
    const building = states.map((s, d) => (s === "rebuilding" ? d : -1)).filter((d) => d >= 0);
    const working = states.filter((s) => s === "ok").length;
    let words = `RAID ${pc.level || ""}, ${working} of ${n} disks working; the array is ${m.state || "optimal"}.`;
    if (failed.length) words += ` Failed: disk ${failed.join(", ")}.`;
    for (const d of building) words += ` Rebuilding disk ${d}: ${Math.round((rebuild[String(d)] || 0) * 100)}% done.`;
    if (m.data_lost) words += " Data has been lost.";
    words += ` ${format(Math.round(m.io_per_s || 0))} I/Os per second.`;
    pic.say(words);
  }

  return {
    push,
    reset() {
      layoutKey = "";
      pic.reset();
    },
  };
}
