// The run client: resume after a drop, drop what was seen, flow control, controls.
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";

import { RunClient } from "../../static/js/client.js";

class FakeSocket extends EventTarget {
  static OPEN = 1;
  static made = [];
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.made.push(this);
  }
  open() {
    this.readyState = FakeSocket.OPEN;
    this.dispatchEvent(new Event("open"));
  }
  message(msg) {
    this.dispatchEvent(Object.assign(new Event("message"), { data: JSON.stringify(msg) }));
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.dispatchEvent(Object.assign(new Event("close"), { code }));
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.drop(1000);
  }
}

beforeEach(() => {
  FakeSocket.made = [];
  globalThis.WebSocket = FakeSocket;
  mock.timers.enable({ apis: ["setTimeout"] });
});
afterEach(() => mock.timers.reset());

const frame = (seq) => ({ type: "frame", seq, t: seq / 10, metrics: {}, events: [] });

function collect(client, type) {
  const got = [];
  client.addEventListener(type, (e) => got.push(e.detail));
  return got;
}

test("after a drop it reconnects by itself and resumes after the last frame seen", () => {
  const client = new RunClient("r1", { url: "ws://test/ws/runs/r1/" });
  const frames = collect(client, "frame");
  const first = FakeSocket.made[0];
  assert.equal(first.url, "ws://test/ws/runs/r1/?after=0");
  first.open();
  for (const seq of [1, 2, 3]) first.message(frame(seq));
  first.drop();
  assert.equal(FakeSocket.made.length, 1); // it waits before trying again
  mock.timers.tick(10_000);
  assert.equal(FakeSocket.made.length, 2);
  const second = FakeSocket.made[1];
  assert.equal(second.url, "ws://test/ws/runs/r1/?after=3");
  second.open();
  // A replay may send again what it already has: it is dropped.
  for (const seq of [3, 4]) second.message(frame(seq));
  assert.deepEqual(frames.map((f) => f.seq), [1, 2, 3, 4]);
});

test("the wait between attempts doubles, up to ten seconds", () => {
  const client = new RunClient("r1", { url: "ws://x/" });
  const delays = collect(client, "connection");
  for (let n = 0; n < 7; n++) {
    FakeSocket.made.at(-1).drop();
    mock.timers.tick(20_000);
  }
  const waits = delays.filter((d) => d.state === "reconnecting").map((d) => d.delay);
  assert.ok(waits[0] >= 225 && waits[0] <= 375, waits[0]);
  assert.ok(waits[1] >= 450 && waits[1] <= 750, waits[1]);
  assert.ok(waits.every((w) => w <= 12_500), waits);
  assert.ok(waits.at(-1) >= 7_500, waits);
});

test("a run that does not exist is not retried", () => {
  const client = new RunClient("gone", { url: "ws://x/" });
  const states = collect(client, "connection");
  FakeSocket.made[0].drop(4404);
  mock.timers.tick(60_000);
  assert.equal(FakeSocket.made.length, 1);
  assert.deepEqual(states.at(-1), { state: "closed", code: 4404 });
});

test("frames are acknowledged every fifth, and at once after a snapshot", () => {
  const client = new RunClient("r1", { url: "ws://x/" });
  const ws = FakeSocket.made[0];
  ws.open();
  for (let seq = 1; seq <= 12; seq++) ws.message(frame(seq));
  assert.deepEqual(ws.sent, [{ type: "seen", seq: 5 }, { type: "seen", seq: 10 }]);
  ws.message({ type: "snapshot", frame: frame(40) });
  assert.deepEqual(ws.sent.at(-1), { type: "seen", seq: 40 });
  assert.equal(client.lastSeq, 40);
});

test("statuses at or before what was seen are dropped", () => {
  const client = new RunClient("r1", { url: "ws://x/" });
  const statuses = collect(client, "status");
  const ws = FakeSocket.made[0];
  ws.open();
  ws.message(frame(5));
  ws.message({ type: "status", seq: 4, sub: 1, status: "paused" });
  ws.message({ type: "status", seq: 5, sub: 1, status: "paused" });
  assert.deepEqual(statuses.map((s) => [s.seq, s.sub]), [[5, 1]]);
});

test("a control resolves when accepted and rejects with the field when refused", async () => {
  const client = new RunClient("r1", { url: "ws://x/" });
  const ws = FakeSocket.made[0];
  ws.open();
  const ok = client.control({ type: "pause" });
  const bad = client.control({ type: "set", name: "capacity", value: 0 });
  const [first, second] = ws.sent;
  assert.equal(first.type, "pause");
  ws.message({ type: "accepted", ref: first.ref, action: "pause" });
  ws.message({ type: "error", ref: second.ref, field: "capacity", message: "capacity must be from 1" });
  assert.equal((await ok).action, "pause");
  await assert.rejects(bad, (err) => err.field === "capacity" && /must be from 1/.test(err.message));
});

test("a control with no answer fails after 8 s; one sent while away fails at once", async () => {
  const client = new RunClient("r1", { url: "ws://x/" });
  await assert.rejects(client.control({ type: "pause" }), /not connected/);
  FakeSocket.made[0].open();
  const waiting = client.control({ type: "pause" });
  mock.timers.tick(8_000);
  await assert.rejects(waiting, /no answer/);
});
