// A chart told in words: the sentence of its latest values and the rows of its table.
import assert from "node:assert/strict";
import { test } from "node:test";

import { TABLE_ROWS, barSentence, lineSentence, sampleRows, spoken } from "../../static/js/charts/common.js";

test("a missing or non-finite value reads as none, a number as people write it", () => {
  assert.equal(spoken(null), "none");
  assert.equal(spoken(undefined), "none");
  assert.equal(spoken(Number.NaN), "none");
  assert.equal(spoken(1234), "1,234");
  assert.equal(spoken(0.1234), "0.123");
});

test("a line chart's table keeps one row a simulated second, the newest first", () => {
  let rows = [];
  for (let t = 0; t < 3; t += 0.1) rows = sampleRows(rows, Math.round(t * 10) / 10, [t]);
  assert.deepEqual(rows.map((r) => r.t), [2, 1, 0]);
});

test("a line chart's table is bounded", () => {
  let rows = [];
  for (let t = 0; t < 100; t += 1) rows = sampleRows(rows, t, [t]);
  assert.equal(rows.length, TABLE_ROWS);
  assert.equal(rows[0].t, 99);
  assert.equal(rows.at(-1).t, 100 - TABLE_ROWS);
});

test("a time earlier than the newest row (a reset) starts the table again", () => {
  let rows = [];
  for (let t = 0; t < 5; t += 1) rows = sampleRows(rows, t, [t]);
  rows = sampleRows(rows, 0.1, [7]);
  assert.deepEqual(rows, [{ t: 0.1, values: [7] }]);
});

test("the sentence of a line chart names each series with its latest value", () => {
  assert.equal(
    lineSentence(["Reads", "Modulo"], 12.04, [512, null]),
    "At 12.0 simulated seconds: Reads 512; Modulo none.",
  );
});

test("the sentence of a bar chart gives each bar its value and its state in words", () => {
  assert.equal(
    barSentence(["disk 0", "disk 1"], [0.31, 0], ["working", "failed"]),
    "disk 0 0.310, working; disk 1 0, failed.",
  );
  assert.equal(barSentence(["shard 0"], [12]), "shard 0 12.");
  assert.equal(barSentence([], []), "No bars yet.");
});

test("the note under a theory line names the model, or says why there is none", async () => {
  const { theoryNote } = await import("../../static/js/charts/common.js");
  const series = [{ label: "Wait", theory: "wait_s" }, { label: "Busy", theory: "utilization" }];
  const models = { wait_s: "Erlang C (M/M/c)", utilization: "offered load" };
  assert.equal(
    theoryNote(series, { theory: { wait_s: 0.0421, utilization: 0.8 } }, models),
    "Dashed: Wait by Erlang C (M/M/c), 0.042. Dashed: Busy by offered load, 0.800.",
  );
  assert.equal(
    theoryNote(series, { theory: { utilization: 1 }, theory_gaps: { wait_s: "load is 1.2: no steady state" } }, models),
    "No theory line for Wait: load is 1.2: no steady state Dashed: Busy by offered load, 1.",
  );
  assert.equal(theoryNote(series, { metrics: {} }, models), "");
  assert.equal(
    theoryNote(series.slice(0, 1), { theory: { wait_s: 2 }, theory_models: { wait_s: "M/M/1" } }, models, { wait_s: "s" }),
    "Dashed: Wait by M/M/1, 2 s.",
  );
});
