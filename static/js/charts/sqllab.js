// Charts for the SQL lab: what each query costs on the real database, the rows it
// has to look at, and the plan SQLite chose for it (shown as text).
import { PALETTE, barChart, group, lineChart } from "./common.js";

// The big figures above the charts.
export const figures = ["mean_query_ms_recent", "rows_examined", "rows_written_per_update", "schema"];

// Events after which the plans shown so far are out of date.
const CHANGES_PLANS = new Set(["sql.index_added", "sql.index_dropped", "sql.schema_switched", "sql.rebuilt"]);

// The latest EXPLAIN QUERY PLAN of each query, from the query.executed events.
function planPanel(root) {
  const figure = document.createElement("figure");
  figure.className = "chart chart-text";
  const caption = document.createElement("figcaption");
  caption.textContent = "Latest query plans (EXPLAIN QUERY PLAN)";
  const pre = document.createElement("pre");
  pre.className = "query-plan";
  pre.setAttribute("role", "log");
  // Plans change several times a second: readers find them here, unannounced.
  pre.setAttribute("aria-live", "off");
  pre.setAttribute("aria-label", "Latest query plans");
  pre.tabIndex = 0; // it scrolls: keyboards must reach it
  pre.textContent = "No query yet.";
  figure.append(caption, pre);
  root.append(figure);
  let latest = {};
  let fallback = "";

  function render() {
    const parts = Object.values(latest).map((e) => {
      const head = `-- ${e.query} (${e.schema}): ${e.rows} rows returned, ${e.examined} examined`;
      const body = e.sql.map((sql, i) => `${sql}\n${(e.plan[i] || []).map((line) => `   ${line}`).join("\n")}`);
      return [head, ...body].join("\n");
    });
    const text = parts.length ? parts.join("\n\n") : fallback || "No query yet.";
    if (pre.textContent !== text) pre.textContent = text;
  }

  return {
    push(frame) {
      fallback = frame.metrics.latest_plan || fallback;
      // commands come before the queries that follow them in a frame's events
      for (const e of frame.events || []) {
        if (e.type === "query.executed") latest[e.query] = e;
        else if (CHANGES_PLANS.has(e.type)) latest = {};
      }
      render();
    },
    reset() {
      latest = {};
      fallback = "";
      pre.textContent = "No query yet.";
    },
  };
}

export default function mount(root, ctx) {
  const charts = group(
    barChart(root, {
      title: "Time per query (last 3 s, measured)",
      yTitle: "ms",
      categories: (f) => f.metrics.query_names,
      values: (f) => f.metrics.query_ms_recent,
    }, ctx),
    barChart(root, {
      title: "Rows examined per query (last 3 s)",
      yTitle: "rows",
      categories: (f) => f.metrics.query_names,
      values: (f) => f.metrics.rows_examined_recent,
      colors: (f) => (f.metrics.query_names || []).map(() => PALETTE[4]),
    }, ctx),
    lineChart(root, {
      title: "Mean query time (last 3 s)",
      yTitle: "ms",
      series: [{ label: "Mean", value: (f) => f.metrics.mean_query_ms_recent }],
    }, ctx),
  );
  const plans = planPanel(root);
  return {
    ...charts,
    push(frame) {
      charts.push(frame);
      plans.push(frame);
    },
    reset() {
      charts.reset();
      plans.reset();
    },
  };
}
