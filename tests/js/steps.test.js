// Step playback: what pressing a guided step sends, and the buttons' state.
import assert from "node:assert/strict";
import { test } from "node:test";

import { actionMessages, planStep, playStep } from "../../static/js/steps.js";

const fixed = new Set(["strategy"]);

test("a step pressed with no run starts one, its immediate settings as parameters", () => {
  const plan = planStep(
    [{ command: "kill", args: { server: 2 }, after: 40 }, { set: { ttl_s: 5 } }, { set: { clients: 50 }, after: 3 }],
    { fixed, live: false },
  );
  assert.equal(plan.startsRun, true);
  assert.equal(plan.stopFirst, false);
  assert.deepEqual(plan.initial, { ttl_s: 5 });
  // The rest is sent in time order, however the author listed it.
  assert.deepEqual(plan.timed.map((a) => a.after), [3, 40]);
});

test("on a live run, settings are sent, not folded into a new run", () => {
  const plan = planStep([{ set: { ttl_s: 5 } }, { command: "kill", after: 10 }], { fixed, live: true });
  assert.equal(plan.startsRun, false);
  assert.deepEqual(plan.initial, {});
  assert.equal(plan.timed.length, 2);
});

test("a setting the running world cannot take ends the run and starts another", () => {
  const plan = planStep([{ set: { strategy: "horizontal" } }, { set: { load: 900 }, after: 5 }], { fixed, live: true });
  assert.equal(plan.stopFirst, true);
  assert.equal(plan.startsRun, true);
  assert.deepEqual(plan.initial, { strategy: "horizontal" });
  assert.deepEqual(plan.timed, [{ set: { load: 900 }, after: 5 }]);
  // A viewer who does not own the run does not end it.
  assert.equal(planStep([{ set: { strategy: "horizontal" } }], { fixed, live: true, canControl: false }).stopFirst, false);
  // Later, it is only a setting like any other (the engine says if it refuses).
  assert.equal(planStep([{ set: { strategy: "x" }, after: 1 }], { fixed, live: true }).stopFirst, false);
});

test("an action becomes the control messages of the protocol", () => {
  assert.deepEqual(actionMessages({ set: { a: 1, b: "x" } }), [
    { type: "set", name: "a", value: 1 },
    { type: "set", name: "b", value: "x" },
  ]);
  assert.deepEqual(actionMessages({ command: "crash" }), [{ type: "command", name: "crash", args: {} }]);
});

function button() {
  return { disabled: false, title: "", dataset: {}, removeAttribute(name) { this[name] = ""; } };
}

test("while a step plays, every step is disabled and says why; then it says done", async () => {
  const steps = [button(), button(), button()];
  const state = { textContent: "" };
  let finish;
  const playing = playStep(steps[1], state, steps, () => new Promise((r) => { finish = r; }), () => () => {});
  assert.equal(steps[1].dataset.stepState, "running");
  assert.equal(state.textContent, "Running…");
  assert.deepEqual(steps.map((s) => s.disabled), [true, true, true]);
  assert.equal(steps[0].title, "Wait until the step being played is done");
  finish();
  await playing;
  assert.equal(steps[1].dataset.stepState, "done");
  assert.equal(state.textContent, "Done.");
  assert.deepEqual(steps.map((s) => s.disabled), [false, false, false]);
  assert.equal(steps[0].title, "");
});

test("a refusal while the step plays is what its state reports", async () => {
  const steps = [button(), button()];
  const state = { textContent: "" };
  let listener = null;
  let unsubscribed = false;
  await playStep(
    steps[0],
    state,
    steps,
    async () => listener("revive: there is no dead server"),
    (l) => { listener = l; return () => { unsubscribed = true; }; },
  );
  assert.equal(steps[0].dataset.stepState, "refused");
  assert.match(state.textContent, /refused an action: revive: there is no dead server/);
  assert.equal(unsubscribed, true);
});

test("a step cut short says so, and every step can be played again", async () => {
  const steps = [button(), button()];
  const state = { textContent: "" };
  await playStep(steps[0], state, steps, async () => {
    throw new Error("the run ended before the step's figure was read");
  }, () => () => {});
  assert.equal(steps[0].dataset.stepState, "stopped");
  assert.equal(state.textContent, "Not finished: the run ended before the step's figure was read.");
  assert.deepEqual(steps.map((s) => s.disabled), [false, false]);
});
