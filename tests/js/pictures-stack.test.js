// The whole stack's picture: its sentence, its layout and its instance boxes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { cdnShare, chainLayout, instanceBoxes, layerState, reachingRates, stackSentence } from "../../static/js/pictures/stack.js";

const layer = (name, label, more = {}) => ({ name, label, instances: 1, up: 1, util: 0.5, queue: 0, share_ms: 1, cost_month: 100, on: true, ...more });

test("the sentence gives the rate, the time, the bottleneck, what is down or missing, and the cost", () => {
  const words = stackSentence({
    layers: [layer("cdn", "CDN", { on: false, cost_month: 0 }), layer("app", "App servers", { instances: 3, up: 2 }),
      layer("cache", "Cache", { up: 0, cost_month: 40 }), layer("db", "Database", { util: 0.92, cost_month: 1100 })],
    bottleneck: "db", rps: 50.2, response_ms: 38.4, hit_ratio: 0.614,
  });
  assert.equal(words, "50 requests a second, 38 ms on average; the bottleneck is the database at 92 %; "
    + "1 of 3 app servers down, the cache is down; 3 app servers, cache hit ratio 0.61, no CDN yet; $1,240 a month.");
});

test("a layer is up, degraded, down or not in this setup", () => {
  assert.equal(layerState(layer("app", "App servers", { instances: 4, up: 4 })), "up");
  assert.equal(layerState(layer("app", "App servers", { instances: 4, up: 3 })), "degraded");
  assert.equal(layerState(layer("cache", "Cache", { up: 0 })), "down");
  assert.equal(layerState(layer("cdn", "CDN", { on: false })), "off");
});

test("the down instances are always drawn, the rest summed up", () => {
  assert.deepEqual(instanceBoxes(3, 2, 8), { up: 2, down: 1, rest: 0 });
  assert.deepEqual(instanceBoxes(20, 17, 8), { up: 4, down: 3, rest: 13 });
  assert.deepEqual(instanceBoxes(20, 0, 8), { up: 0, down: 7, rest: 13 });
});

test("the chain runs left to right when wide and top to bottom on a phone", () => {
  const layers = ["cdn", "lb", "app", "session", "cache", "db", "queue"].map((n) => layer(n, n));
  const wide = chainLayout(layers, 1250);
  assert.equal(wide.horizontal, true);
  assert.equal(wide.boxes.length, 8);
  assert.ok(wide.boxes.every((b, i) => i === 0 || b.x > wide.boxes[i - 1].x + wide.boxes[i - 1].w));
  assert.ok(wide.boxes.at(-1).x + wide.boxes.at(-1).w <= 1250);
  const phone = chainLayout(layers, 330);
  assert.equal(phone.horizontal, false);
  assert.ok(phone.boxes.every((b, i) => i === 0 || b.y > phone.boxes[i - 1].y + phone.boxes[i - 1].h));
  assert.ok(phone.boxes.every((b) => b.x + b.w <= 330));
});

test("dots thin past the CDN by the pages it answers and past the cache by its hits", () => {
  const layers = [layer("cdn", "CDN"), layer("lb", "Balancer"), layer("app", "App servers"),
    layer("session", "Session store", { on: false }), layer("cache", "Cache"), layer("db", "Database")];
  const picture = { layers, rps: 100, cdn_rps: 40, hit_ratio: 0.75 };
  assert.deepEqual(reachingRates(picture).map((r) => r && r.rate), [100, 60, 60, null, 60, 15]);
  assert.equal(cdnShare(picture), 0.4);
  // A CDN that is down answers nothing and passes every request to the balancer.
  const down = { ...picture, layers: [layer("cdn", "CDN", { up: 0 }), ...layers.slice(1)], cdn_rps: 0 };
  assert.deepEqual(reachingRates(down).map((r) => r && r.rate), [100, 100, 100, null, 100, 25]);
  // An app tier that is down lets nothing through.
  const noApp = { ...picture, layers: layers.map((l) => (l.name === "app" ? { ...l, up: 0 } : l)) };
  assert.deepEqual(reachingRates(noApp).map((r) => r && r.rate), [100, 60, 60, null, 0, 0]);
});

test("the sentence says what share the CDN answers when there is one", () => {
  const words = stackSentence({
    layers: [layer("cdn", "CDN", { cost_month: 20 }), layer("app", "App servers", { instances: 2 })],
    bottleneck: "app", rps: 100, cdn_rps: 35, response_ms: 20, hit_ratio: 0,
  });
  assert.match(words, /2 app servers, the CDN answers 35 %/);
});
