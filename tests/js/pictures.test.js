// The live pictures' sampling: dots stand for traffic, bounded, never one per request.
import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_DOTS, eventCount, sample } from "../../static/js/pictures/common.js";

test("a frame's traffic becomes a few dots, growing slowly with the count", () => {
  assert.equal(sample(0), 0);
  assert.equal(sample(-4), 0);
  assert.equal(sample(2), 2);
  assert.ok(sample(100) < sample(10_000));
  assert.ok(sample(1e9) <= 8);
  assert.ok(MAX_DOTS <= 60);
});

test("the count of an event type adds folded counts and single events", () => {
  const frame = { events: [{ type: "req", count: 30 }, { type: "req", t: 1.2 }, { type: "other", count: 5 }] };
  assert.equal(eventCount(frame, "req"), 31);
  assert.equal(eventCount(frame, "none"), 0);
  assert.equal(eventCount({}, "req"), 0);
});
