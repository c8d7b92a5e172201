// Live picture of the SQL lab: the plan SQLite chose for the current query, drawn
// as a tree (sort above group above join above the table scans and index seeks),
// with the rows it examined, and the secondary indexes, each a button that adds or
// drops it. Plan nodes are read-only: no command fits them.
import { Picture, format, node, svg } from "./common.js";

const ROWS = 6; // plan nodes drawn at most (the longest plan of the mix has 5)
const ROW_H = 27;
const HOLD_MS = 2500; // a plan stays on screen this long before the next query's
const INDEXES = [
  { name: "orders_user_id", label: "orders.user_id", table: "orders" },
  { name: "orders_product_id", label: "orders.product_id", table: "orders" },
  { name: "users_email", label: "users.email", table: "users" },
];
const TABLES = { o: "orders", p: "products", u: "users", j: "JSON orders" };
const CHANGES_PLANS = new Set(["sql.index_added", "sql.index_dropped", "sql.schema_switched", "sql.rebuilt"]);

// One line of EXPLAIN QUERY PLAN in words: its kind and what it says.
function describe(detail) {
  const text = detail.trim();
  let m = text.match(/^(SCAN|SEARCH) (\w+)(.*)$/);
  if (m) {
    const table = TABLES[m[2]] || m[2];
    if (m[1] === "SCAN") {
      return /VIRTUAL TABLE/.test(m[3])
        ? { kind: "scan", words: `scan every element of ${table}` }
        : { kind: "scan", words: `scan every row of ${table}` };
    }
    const index = m[3].match(/USING (?:COVERING )?INDEX (\w+)/);
    if (index) return { kind: "seek", words: `seek ${table} via ${index[1].replace(/^idx_/, "index ")}` };
    return { kind: "seek", words: `seek ${table} by primary key` };
  }
  m = text.match(/^USE TEMP B-TREE FOR (.*)$/);
  if (m) {
    const what = { "ORDER BY": "sort", "GROUP BY": "group", DISTINCT: "distinct" }[m[1]] || "temp B-tree";
    return { kind: "sort", words: `${what} in a temporary B-tree (${m[1]})` };
  }
  if (/SUBQUERY/.test(text)) return { kind: "subquery", words: "subquery run for each row" };
  return { kind: "step", words: text };
}

// A statement's plan as a tree, top down: sorts, then the join of its table
// accesses (outer first: SQLite joins by nested loops), each access with any
// subquery under it.
export function planTree(lines) {
  const sorts = [];
  const accesses = [];
  let parent = null;
  for (const line of lines) {
    const depth = (line.match(/^ */)[0].length / 2) | 0;
    const step = { ...describe(line), detail: line.trim(), children: [] };
    if (depth > 0 && parent) parent.children.push(step);
    else if (step.kind === "sort") sorts.push(step);
    else if (step.kind === "subquery" && accesses.length) {
      accesses[accesses.length - 1].children.push(step);
      parent = step;
    } else {
      accesses.push(step);
      parent = step;
    }
  }
  // Listed in the order they run (GROUP BY before ORDER BY): the last at the top.
  let bottom = accesses.length > 1
    ? [{ kind: "join", words: `nested-loop join: ${accesses.length} tables`, detail: "for each outer row, look up the inner", children: accesses }]
    : accesses;
  for (const sort of sorts) {
    sort.children = bottom;
    bottom = [sort];
  }
  return bottom;
}

function flatten(trees, depth = 0, out = []) {
  for (const t of trees) {
    out.push({ ...t, depth });
    flatten(t.children || [], depth + 1, out);
  }
  return out;
}

export default function mount(root, ctx) {
  const height = 44 + ROWS * ROW_H + 70;
  const pic = new Picture(root, ctx, { title: "The current query's plan, and the indexes", height });
  const rows = [];
  const head = node(pic.layers.nodes, { x: 4, y: 2, w: 392, h: 40, name: "No query yet" });
  for (let i = 0; i < ROWS; i++) {
    const g = svg("g", { class: "pic-node pic-plan-node", display: "none" });
    const line = svg("path", { class: "pic-link", fill: "none" });
    const box = svg("rect", { class: "pic-box", height: ROW_H - 4, rx: 4 });
    const title = svg("text", { class: "pic-state", y: 15 });
    const detail = svg("text", { class: "pic-detail", "text-anchor": "end", y: 15 });
    g.append(box, title, detail);
    pic.layers.links.append(line);
    pic.layers.nodes.append(g);
    rows.push({ g, line, box, title, detail });
  }
  const idxTop = 44 + ROWS * ROW_H + 16;
  pic.layers.labels.append(svg("text", { class: "pic-detail", x: 4, y: idxTop - 4,
    text: "Indexes (click to add or drop); the plan nodes above only show." }));
  const indexes = INDEXES.map((spec, i) => {
    const box = node(pic.layers.nodes, { x: 4 + i * 132, y: idxTop, w: 128, h: 50, name: spec.label });
    box.el.querySelector(".pic-name").style.fontSize = "12px";
    const entry = { spec, box, present: false, applies: true };
    pic.action(box.el,
      () => (entry.present ? `Drop index ${spec.name}` : `Add index ${spec.name}`),
      () => ctx.command(entry.present ? "drop_index" : "add_index", { index: spec.name }));
    return entry;
  });

  let shown = null; // the query.executed event drawn
  let shownAt = -Infinity;
  const latest = {};
  let setup = null; // schema and indexes: a change of them changes the plans

  function drawPlan(e) {
    const trees = e.plan.length > 1
      ? e.plan.map((lines, i) => ({ kind: "statement", words: `statement ${i + 1} of ${e.plan.length}, joined in the app`, detail: "", children: planTree(lines) }))
      : planTree(e.plan[0] || []);
    const flat = flatten(trees).slice(0, ROWS);
    rows.forEach((row, i) => {
      const step = flat[i];
      if (!step) {
        row.g.setAttribute("display", "none");
        row.line.setAttribute("d", "");
        return;
      }
      const x = 10 + step.depth * 22;
      const y = 46 + i * ROW_H;
      row.g.setAttribute("display", "inline");
      row.g.setAttribute("transform", `translate(${x},${y})`);
      row.g.dataset.kind = step.kind;
      row.g.dataset.state = step.kind;
      row.box.setAttribute("width", String(390 - x));
      row.title.setAttribute("x", "6");
      row.title.textContent = step.words;
      row.detail.setAttribute("x", String(384 - x));
      row.detail.textContent = step.kind === "scan" || step.kind === "seek" ? step.kind.toUpperCase() : "";
      // An elbow from the parent's left edge down to this node.
      const parentIndex = flat.slice(0, i).map((s) => s.depth).lastIndexOf(step.depth - 1);
      if (parentIndex >= 0) {
        const px = 10 + (step.depth - 1) * 22 + 8;
        const py = 46 + parentIndex * ROW_H + ROW_H - 4;
        row.line.setAttribute("d", `M${px},${py} V${y + (ROW_H - 4) / 2} H${x}`);
      } else row.line.setAttribute("d", "");
    });
    head.update({
      name: `${e.query} (${e.schema})`,
      state: `${format(e.examined)} rows examined, ${format(e.rows)} returned`,
      detail: "",
    });
    head.el.dataset.query = e.query;
  }

  function push(frame) {
    const m = frame.metrics || {};
    const now = performance.now();
    let changed = false;
    const current = `${m.schema}|${m.indexes}`;
    if (setup !== null && current !== setup) {
      for (const k of Object.keys(latest)) delete latest[k];
      changed = true;
    }
    setup = current;
    for (const e of frame.events || []) {
      if (e.type === "query.executed") latest[e.query] = e;
      else if (CHANGES_PLANS.has(e.type)) {
        for (const k of Object.keys(latest)) delete latest[k];
        changed = true;
      }
    }
    const names = Object.keys(latest);
    if (names.length && (changed || !shown || now - shownAt >= HOLD_MS || !latest[shown.query])) {
      // The next query of the mix after the one shown, so that each gets its turn
      // (after an index or schema change, the same query first: its plan changed).
      const order = m.query_names || names;
      const start = shown ? order.indexOf(shown.query) : -1;
      let pick = changed && shown ? latest[shown.query] || null : null;
      for (let k = 1; k <= order.length && !pick; k++) pick = latest[order[(start + k) % order.length]] || null;
      shown = pick;
      shownAt = now;
      if (shown) drawPlan(shown);
    } else if (shown && latest[shown.query]) {
      shown = latest[shown.query];
      head.update({ state: `${format(shown.examined)} rows examined, ${format(shown.rows)} returned` });
    }
    const present = new Set(String(m.indexes || "").split(", ").filter((s) => s && s !== "none"));
    const documents = m.schema === "document";
    for (const entry of indexes) {
      entry.present = present.has(entry.spec.name);
      entry.applies = !(documents && entry.spec.table === "orders");
      entry.box.update({
        state: entry.applies ? (entry.present ? "present" : "absent") : "n/a",
        detail: entry.applies ? (entry.present ? "click: drop" : "click: add") : "no orders table",
        highlight: entry.present,
      });
    }
    pic.refreshActions();
    const have = [...present];
    let words = `Schema ${m.schema || ""}; indexes: ${have.length ? have.join(", ") : "none"}.`;
    if (shown) {
      const kinds = flatten(shown.plan.flatMap((lines) => planTree(lines))).map((s) => s.kind);
      const scans = kinds.filter((k) => k === "scan").length;
      const seeks = kinds.filter((k) => k === "seek").length;
      words += ` The ${shown.query} query ${scans ? `scans ${scans} table${scans > 1 ? "s" : ""}` : "scans nothing"}`
        + `${seeks ? ` and seeks ${seeks} by index or key` : ""}: ${format(shown.examined)} rows examined for ${format(shown.rows)} returned.`;
    }
    pic.say(words);
  }

  return {
    push,
    reset() {
      shown = null;
      setup = null;
      shownAt = -Infinity;
      for (const k of Object.keys(latest)) delete latest[k];
      rows.forEach((row) => { row.g.setAttribute("display", "none"); row.line.setAttribute("d", ""); });
      head.update({ name: "No query yet", state: "", detail: "" });
      pic.reset();
    },
  };
}
