// Narration: events told in words, and announced together without loss.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Announcer, LogFolder, readableType, sentence, summary } from "../../static/js/narration.js";

const templates = {
  "balancer.down": "Balancer {balancer} went down, cutting {cut#connection}; the standby {standby_ready?is ready|is not ready}",
  "raid.degraded": "The array is degraded: disk {failed} down",
  "shard.hot_key": "Key {key} is hot: {share%} of requests go to shard {shard}",
  "cache.flush": "The cache was flushed: {dropped#entry|entries} dropped",
  "worker.killed": "A worker was killed{before_ack? before acknowledging its job|}",
  "replication.pause": "Replica {replica} paused for {seconds} s",
  "balancer.strategy": "The balancer now uses {strategy}",
  "server.down": "Server {server} went down",
};

test("an event is told in the words of its template, booleans as words", () => {
  const e = { type: "balancer.down", t: 16.2, balancer: "lb-a", cut: 16, standby_ready: false };
  assert.equal(sentence(e, templates), "Balancer lb-a went down, cutting 16 connections; the standby is not ready");
  assert.equal(
    sentence({ ...e, cut: 1, standby_ready: true }, templates),
    "Balancer lb-a went down, cutting 1 connection; the standby is ready",
  );
});

test("an absent field chooses the no words of a choice", () => {
  assert.equal(sentence({ type: "worker.killed", t: 1, job: null }, templates), "A worker was killed");
  assert.equal(
    sentence({ type: "worker.killed", t: 1, before_ack: true }, templates),
    "A worker was killed before acknowledging its job",
  );
});

test("numbers are written for people, lists joined and fractions as percentages", () => {
  assert.equal(sentence({ type: "replication.pause", replica: "r1", seconds: 4.2071 }, templates), "Replica r1 paused for 4.21 s");
  assert.equal(sentence({ type: "raid.degraded", failed: [0, 3, 4] }, templates), "The array is degraded: disk 0, 3 and 4 down");
  assert.equal(sentence({ type: "shard.hot_key", key: 7, share: 0.5, shard: 2 }, templates), "Key 7 is hot: 50% of requests go to shard 2");
  assert.equal(sentence({ type: "cache.flush", dropped: 1200 }, templates), "The cache was flushed: 1,200 entries dropped");
  assert.equal(sentence({ type: "balancer.strategy", strategy: "least_connections" }, templates), "The balancer now uses least connections");
});

test("the page's number format is used when it is given", () => {
  const e = { type: "replication.pause", replica: "r1", seconds: 2 };
  assert.equal(sentence(e, templates, (v) => `<${v}>`), "Replica r1 paused for <2> s");
});

test("a type with no template reads as words, never as a dump of its fields", () => {
  const text = sentence({ type: "balancer.mark_down", t: 3, server: 2, standby_ready: false }, {});
  assert.equal(text, "Balancer mark down");
  assert.equal(readableType("sql.index_added"), "Sql index added");
  assert.equal(sentence({ type: "run.stopped", t: 9, reason: "time is up" }, {}), "The run ended: time is up");
});

test("a group of events is said one sentence each, or the first and how many more", () => {
  const down = (n) => ({ type: "server.down", text: sentence({ type: "server.down", server: n }, templates) });
  assert.equal(summary([down(2), down(3)]), "Server 2 went down. Server 3 went down.");
  assert.equal(summary([down(2), down(3), down(4), down(5), down(6)]), "Server 2 went down, and 4 more like it.");
  const flush = { type: "cache.flush", text: "The cache was flushed" };
  assert.equal(summary([down(2), flush, down(3)]), "Server 2 went down. Server 3 went down. The cache was flushed.");
});

function fakeClock() {
  const timers = [];
  return {
    timers,
    schedule: (fn, ms) => {
      timers.push({ fn, ms, done: false });
      return timers.length - 1;
    },
    cancel: (id) => {
      timers[id].done = true;
    },
    fire() {
      const timer = timers.find((t) => !t.done);
      timer.done = true;
      timer.fn();
    },
  };
}

test("events within a window are announced together at its end, none lost", () => {
  const clock = fakeClock();
  const said = [];
  const announcer = new Announcer((text) => said.push(text), { windowMs: 3000, ...clock });
  announcer.add("server.down", "Server 2 went down");
  announcer.add("server.down", "Server 3 went down");
  assert.deepEqual(said, [], "nothing is said before the window ends");
  assert.equal(clock.timers.length, 1, "one window for the events gathered");
  assert.equal(clock.timers[0].ms, 3000);
  clock.fire();
  assert.deepEqual(said, ["Server 2 went down. Server 3 went down."]);
});

test("a flood of events becomes one announcement a window, counting them all", () => {
  const clock = fakeClock();
  const said = [];
  const announcer = new Announcer((text) => said.push(text), { windowMs: 3000, ...clock });
  for (let i = 0; i < 50; i++) announcer.add("query.slow", `Slow query ${i}`);
  clock.fire();
  for (let i = 50; i < 60; i++) announcer.add("query.slow", `Slow query ${i}`);
  clock.fire();
  assert.deepEqual(said, ["Slow query 0, and 49 more like it.", "Slow query 50, and 9 more like it."]);
  assert.equal(clock.timers.length, 2, "a window opens only when there is something to say");
});

test("the log folds a run of one type within a few seconds into one line", () => {
  const folder = new LogFolder({ windowS: 5 });
  assert.deepEqual(folder.add({ type: "query.slow", t: 1 }, "A slow query"), { text: "A slow query", fold: false });
  assert.deepEqual(folder.add({ type: "query.slow", t: 2 }, "Another"), { text: "A slow query, and 1 more like it", fold: true });
  assert.deepEqual(folder.add({ type: "query.slow", t: 4 }, "Another"), { text: "A slow query, and 2 more like it", fold: true });
  assert.equal(folder.add({ type: "query.slow", t: 9 }, "Later").fold, false, "a new line once the window has passed");
  assert.equal(folder.add({ type: "sql.index_added", t: 9.5 }, "Index added").fold, false);
  assert.equal(folder.add({ type: "query.slow", t: 9.6 }, "Again").fold, false, "another event in between ends the run");
  assert.equal(folder.add({ type: "query.slow", t: 0.1 }, "New run").fold, false, "time going back is a new run");
});

test("a sentence takes a capital from its own words, never from a name it starts with", () => {
  const own = { "server.stopped": "{server} stopped", "raid.disk_failed": "disk {disk} failed" };
  assert.equal(sentence({ type: "server.stopped", server: "blue1" }, own), "blue1 stopped");
  assert.equal(sentence({ type: "raid.disk_failed", disk: 3 }, own), "Disk 3 failed");
});
