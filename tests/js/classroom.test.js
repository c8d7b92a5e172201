// The class's answers as bars, and where the measured figure is drawn among them.
import assert from "node:assert/strict";
import { test } from "node:test";

import { distribution, measuredBin } from "../../static/js/classroom.js";

const numbers = { kind: "number", histogram: { edges: [0, 10, 20, 30], counts: [2, 0, 1] } };

test("a choice poll has a bar per choice, in order, with its count", () => {
  const rows = distribution({ kind: "choice", choices: ["a", "b"], counts: [3, 0] });
  assert.deepEqual(rows, [{ label: "a", count: 3 }, { label: "b", count: 0 }]);
});

test("a number poll has a bar per bin, named by its edges", () => {
  assert.deepEqual(distribution(numbers).map((r) => r.label), ["0 to 10", "10 to 20", "20 to 30"]);
});

test("the measured figure is drawn at the bin that holds it, or beyond either end", () => {
  assert.equal(measuredBin(numbers, 15), 1);
  assert.equal(measuredBin(numbers, 10), 0); // an edge belongs to the bin below it
  assert.equal(measuredBin(numbers, 0), 0);
  assert.equal(measuredBin(numbers, 30), 2);
  assert.equal(measuredBin(numbers, -1), -1);
  assert.equal(measuredBin(numbers, 31), 3);
  assert.equal(measuredBin(numbers, Number.NaN), null);
});

test("when every answer was the same number, the figure is at it, before or after", () => {
  const same = { kind: "number", histogram: { edges: [5, 5], counts: [4] } };
  assert.equal(measuredBin(same, 5), 0);
  assert.equal(measuredBin(same, 4), -1);
  assert.equal(measuredBin(same, 6), 1);
  assert.equal(measuredBin({ kind: "number", histogram: { edges: [], counts: [] } }, 5), null);
});
