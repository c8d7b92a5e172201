// A step's prediction: answered first, locked once measured, read from the run.
import assert from "node:assert/strict";
import { test } from "node:test";

import { describeMeasured, describePrediction, PredictionState, readAnswer, shortReveal } from "../../static/js/predictions.js";

const choice = { kind: "choice", choices: ["Falls tenfold", "Falls much less", "No change"], measure: "hit_ratio", label: "Hit ratio", unit: "", reveal_after: 30 };
const number = { kind: "number", choices: [], measure: "db_reads_per_s", label: "Database reads", unit: "reads/s", reveal_after: 15 };

test("an answer must be one of the choices, or a finite number, and says what to fix", () => {
  assert.deepEqual(readAnswer(choice, "1"), { body: { choice: 1 } });
  assert.match(readAnswer(choice, null).error, /Pick one/);
  assert.match(readAnswer(choice, "3").error, /Pick one/);
  assert.deepEqual(readAnswer(number, " 200 "), { body: { value: 200 } });
  assert.equal(readAnswer(number, "").error, "Type a number first (in reads/s).");
  assert.match(readAnswer(number, "lots").error, /Type a number/);
  assert.match(readAnswer(number, "Infinity").error, /Type a number/);
});

test("a step cannot be played until its prediction is answered, and says why", () => {
  const s = new PredictionState(choice);
  assert.equal(s.phase, "unanswered");
  assert.equal(s.playable, false);
  assert.match(s.why, /prediction first/);
  assert.throws(() => s.start(0, null));
  s.answer({ choice: 1 });
  assert.equal(s.playable, true);
  assert.equal(s.why, "");
  // Until the step has run, the student may change their mind.
  s.answer({ choice: 2 });
  assert.equal(s.entry.choice, 2);
});

test("the figure is read from the first frame at or after the reveal time", () => {
  const s = new PredictionState(number, { value: 200 });
  s.start(12, 480);
  assert.equal(s.readAt, 27);
  assert.equal(s.playable, false);
  assert.equal(s.frame(26.9, { db_reads_per_s: 300 }), null);
  // A frame without the figure (a world that has none yet) is not a reading.
  assert.equal(s.frame(27, {}), null);
  const measured = s.frame(27.1, { db_reads_per_s: 210 });
  assert.deepEqual(measured, { after: 210, before: 480, t: 27.1 });
  assert.equal(s.phase, "revealed");
  assert.deepEqual(s.entry, { value: 200, measured });
  // Once revealed, the prediction stays as it was made.
  assert.equal(s.canAnswer, false);
  assert.throws(() => s.answer({ value: 210 }), /can no longer change/);
});

test("a run that ends before the reading leaves the step to be played again", () => {
  const s = new PredictionState(choice, { choice: 0 });
  s.start(0, null);
  s.interrupted();
  assert.equal(s.phase, "answered");
  assert.equal(s.playable, true);
  // A step already revealed keeps its earlier reading if a replay is cut short.
  const done = new PredictionState(choice, { choice: 0, measured: { after: 0.4, before: null, t: 30 } });
  assert.equal(done.phase, "revealed");
  done.start(40, 0.4);
  done.interrupted();
  assert.equal(done.phase, "revealed");
  assert.equal(done.entry.measured.after, 0.4);
});

test("the reveal puts the prediction beside the figure, with its unit", () => {
  assert.equal(describePrediction(choice, { choice: 1 }), "You predicted: Falls much less.");
  assert.equal(describePrediction(number, { value: 200 }), "You predicted: Database reads 200 reads/s.");
  assert.equal(
    describeMeasured(number, { before: 480, after: 210.4, t: 27.1 }),
    "Your run measured: Database reads 480 reads/s before the step, 210.4 reads/s at 27.1 simulated seconds.",
  );
  assert.equal(describeMeasured(choice, { before: null, after: 0.61, t: 30 }), "Your run measured: Hit ratio 0.610 at 30.0 simulated seconds.");
});

test("in a few words, for the phone's docked bar", () => {
  assert.equal(
    shortReveal(number, { value: 200, measured: { before: 480, after: 210.4, t: 27 } }),
    "Predicted 200 reads/s; measured 210.4 reads/s.",
  );
  assert.equal(shortReveal(choice, { choice: 1, measured: { before: 0.562, after: 0.244, t: 37 } }), "Hit ratio: 0.562 → 0.244.");
  assert.equal(shortReveal(choice, { choice: 1, measured: { before: null, after: 0.5, t: 20 } }), "Hit ratio: 0.500.");
  assert.equal(shortReveal(choice, { choice: 1 }), "");
});
