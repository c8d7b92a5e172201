// Starting a run, and what the page is told when it cannot start.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createRun } from "../../static/js/runs.js";
import { format, shown } from "../../static/js/values.js";

function answer(status, body, headers = {}) {
  return async (url, init) => {
    answer.last = { url, init };
    return new Response(JSON.stringify(body), { status, headers });
  };
}

test("a started run's status comes back; the body and token are sent", async () => {
  const run = await createRun({ kind: "cache", seed: 7 }, { fetch: answer(201, { id: "r1" }), token: "t0k" });
  assert.equal(run.id, "r1");
  assert.equal(answer.last.url, "/api/runs/");
  assert.equal(answer.last.init.headers["X-CSRFToken"], "t0k");
  assert.deepEqual(JSON.parse(answer.last.init.body), { kind: "cache", seed: 7 });
});

test("a site at its limit says so, with the field and the time to wait", async () => {
  const busy = answer(503, { errors: { runs: "ScaleLab is at its limit of 300 live runs: try again in 30 s" } }, { "Retry-After": "30" });
  await assert.rejects(createRun({ kind: "cache" }, { fetch: busy }), (err) => {
    assert.equal(err.field, "runs");
    assert.equal(err.status, 503);
    assert.equal(err.retryAfter, 30);
    assert.match(err.message, /try again in 30 s/);
    return true;
  });
});

test("a refusal with no JSON body still names the run and the status", async () => {
  const broken = async () => new Response("<h1>Bad gateway</h1>", { status: 502 });
  await assert.rejects(createRun({ kind: "cache" }, { fetch: broken }), (err) => err.field === "run" && /HTTP 502/.test(err.message));
});

test("figures are written for people", () => {
  assert.equal(format(1234567), "1,234,567");
  assert.equal(format(0.61234), "0.612");
  assert.equal(format(12.345, "ms"), "12.3 ms");
  assert.equal(format(Number.NaN), "–");
  assert.equal(format(null), "–");
  assert.equal(format([1, 2.5]), "1, 2.50");
});

test("a figure given as a name reads in the engine's words; -1 for none in its own", () => {
  const bottleneck = { unit: "", words: { app: "App servers", none: "none yet" } };
  assert.equal(shown(bottleneck, "app"), "App servers");
  assert.equal(shown(bottleneck, "none"), "none yet");
  assert.equal(shown(bottleneck, "queue"), "queue"); // a name with no words stays as it is
  assert.equal(shown({ unit: "" }, "least_connections"), "least connections");
  assert.equal(shown({ unit: "", unset: "no hot key" }, -1), "no hot key");
  assert.equal(shown({ unit: "ms" }, 12.345), "12.3 ms");
});

test("a moment link names a run and a frame; anything else is no moment", async () => {
  const { momentFromUrl } = await import("../../static/js/runs.js");
  assert.deepEqual(momentFromUrl("?run=abc&at=412&t=41.23"), { run: "abc", at: 412, t: "41.2" });
  assert.deepEqual(momentFromUrl("?run=abc&at=0"), { run: "abc", at: 0, t: "" });
  assert.equal(momentFromUrl("?run=abc"), null);
  assert.equal(momentFromUrl("?at=5"), null);
  assert.equal(momentFromUrl("?run=abc&at=-3"), null);
  assert.equal(momentFromUrl("?run=abc&at=1.5"), null);
  assert.equal(momentFromUrl(""), null);
});
