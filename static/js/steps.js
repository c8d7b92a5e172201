// Guided steps: what pressing a step does to the run, and the step buttons' state.

// Plan a step's actions for a run that is live or not. Actions are
// {set: {name: value}} or {command, args}, each with an optional `after`
// (simulated seconds from the press). A setting of a parameter the running world
// cannot take (`fixed`) ends the run and starts a new one; settings due at once
// then go into the new run's parameters instead of being sent.
export function planStep(actions, { fixed = new Set(), live = false, canControl = true } = {}) {
  const timed = [...actions].sort((a, b) => (a.after || 0) - (b.after || 0));
  const atOnce = (a) => a.set && !a.after;
  const reshapes = live && canControl && timed.some((a) => atOnce(a) && Object.keys(a.set).some((n) => fixed.has(n)));
  const startsRun = reshapes || !live;
  const initial = {};
  if (startsRun) for (const a of timed) if (atOnce(a)) Object.assign(initial, a.set);
  return {
    stopFirst: reshapes,
    startsRun,
    initial,
    timed: startsRun ? timed.filter((a) => !atOnce(a)) : timed,
  };
}

// The messages one action sends, in order.
export function actionMessages(action) {
  const out = [];
  if (action.set) for (const [name, value] of Object.entries(action.set)) out.push({ type: "set", name, value });
  if (action.command) out.push({ type: "command", name: action.command, args: action.args || {} });
  return out;
}

// A step plays to its end (its delayed actions included) before another may start:
// pressed promptly, a step would otherwise act on a world still busy with the last.
// `play` returns a promise; `onRefused(listener)` subscribes to refusals and returns
// an unsubscribe function.
export async function playStep(step, state, steps, play, onRefused) {
  for (const s of steps) {
    s.disabled = true;
    if (s !== step) s.title = "Wait until the step being played is done";
  }
  step.dataset.stepState = "running";
  state.textContent = "Running…";
  let refused = null;
  let failed = null;
  const stop = onRefused((message) => {
    refused = refused || message;
  });
  try {
    await play();
  } catch (err) {
    failed = err.message;
  } finally {
    stop();
    step.dataset.stepState = failed ? "stopped" : refused ? "refused" : "done";
    if (failed) state.textContent = `Not finished: ${failed}.`;
    else state.textContent = refused ? `Done, but the simulation refused an action: ${refused}` : "Done.";
    for (const s of steps) {
      s.disabled = false;
      if (s !== step) s.removeAttribute("title");
    }
  }
}
