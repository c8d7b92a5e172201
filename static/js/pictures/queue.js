// Live picture of the queue engine: users, the web threads, the waiting line and
// the pool doing the work (workers in async mode, the web threads in sync mode).
// Jobs are dots sampled from the frame's counts: into the queue, out of the pool.
import { Picture, eventCount, format, link, node, queue, reducedMotion, sample, svg } from "./common.js";

const MAX_BOXES = 7; // one box per worker up to this; beyond, the last box stands for the rest
const KILLED_SHOWN_FRAMES = 30; // frames (3 s at any speed) a killed worker stays drawn, hatched
const BOX_W = 46;
const BOX_H = 56;
const BOX_GAP = 3;
const ROW_Y = 168;

export default function mount(root, ctx) {
  const pic = new Picture(root, ctx, { title: "The job queue and who does the work", height: 262 });
  const reduced = reducedMotion();
  let parts = null;
  let shape = "";
  // Workers gone lately, drawn hatched for a while: {at: frame number, state}.
  // A command's own events come to the panel, not to the picture, so a kill is
  // told from the frames: the pool shrank while a job was delivered again, or
  // after this picture asked for a kill.
  let gone = [];
  let asked = []; // frame numbers of kills asked for from the picture
  let frames = 0;
  let lastWorkers = null;
  let lastRetried = null;
  let lastArrived = null;

  const links = pic.layers.links;
  const nodes = pic.layers.nodes;
  const labels = pic.layers.labels;

  function clear() {
    for (const name of ["links", "nodes", "labels"]) pic.layers[name].replaceChildren();
    pic.actions = [];
  }

  // Build the components for a mode and a number of pool boxes.
  function build(mode, boxes) {
    clear();
    const sync = mode === "sync";
    const users = node(nodes, { x: 6, y: 8, w: 86, h: 56, name: "Users" });
    const web = node(nodes, { x: 142, y: 8, w: 124, h: 56, name: "Web threads" });
    const q = queue(nodes, { x: 60, y: 104, slots: 14, size: 14, gap: 3, label: "" });
    // Arrows come in at the right end of the queue, clear of its caption.
    const qCenter = { x: 60 + 14 * 17 - 24, y: 111 };
    const toWeb = link(links, users.right(), web.left(), { arrow: pic.arrow });
    const toQueue = link(links, web.bottom(), { x: qCenter.x, y: 96 }, { arrow: pic.arrow });
    const toPool = link(links, { x: qCenter.x, y: 122 }, { x: qCenter.x, y: ROW_Y - 2 }, { arrow: pic.arrow });
    const pool = [];
    for (let i = 0; i < boxes; i++) {
      const box = node(nodes, { x: 6 + i * (BOX_W + BOX_GAP), y: ROW_Y, w: BOX_W, h: BOX_H, name: "" });
      box.el.dataset.role = sync ? "thread" : "worker";
      pool.push(box);
    }
    const doneAt = { x: 60, y: 248 };
    const failAt = { x: 330, y: 248 };
    const done = svg("text", { class: "pic-detail", x: 6, y: 252 });
    const failed = svg("text", { class: "pic-detail", x: 394, y: 252, "text-anchor": "end" });
    const poolTitle = svg("text", { class: "pic-detail", x: 6, y: ROW_Y - 6 });
    const modeText = svg("text", { class: "pic-detail", x: 6, y: 144 });
    labels.append(done, failed, poolTitle, modeText);

    pic.action(users.el, () => "Send a burst of 200 requests", () => ctx.command("burst", { requests: 200 }));
    let side = null;
    let add = null;
    if (sync) {
      // The workers wait unused in sync mode; they can still be killed or added.
      side = node(nodes, { x: 290, y: 8, w: 104, h: 56, name: "Workers" });
      side.el.dataset.role = "worker";
      pic.action(side.el, () => "Kill a worker (unused in sync mode)", kill);
    } else {
      add = node(nodes, { x: 6 + MAX_BOXES * (BOX_W + BOX_GAP) + 4, y: ROW_Y, w: 40, h: BOX_H, name: "Add" });
      add.update({ state: "+1" });
      pic.action(add.el, () => "Add a worker", () => ctx.command("add_worker", { count: 1 }));
      for (const box of pool) {
        pic.action(box.el, () => "Kill a worker (the one running the oldest job)", kill);
      }
    }
    parts = { sync, users, web, q, qCenter, toWeb, toQueue, toPool, pool, done, failed, doneAt, failAt, poolTitle, modeText, side, add };
  }

  function kill() {
    asked.push(frames);
    ctx.command("kill_worker", { before_ack: false });
  }

  // Note the workers that left since the last frame, killed or stopped.
  function noteGone(m) {
    const workers = m.workers || 0;
    const retried = m.retried || 0;
    if (lastWorkers !== null && workers < lastWorkers) {
      const left = lastWorkers - workers;
      const redelivered = lastRetried !== null && retried > lastRetried ? retried - lastRetried : 0;
      const killed = Math.min(left, Math.max(redelivered, asked.length));
      asked = asked.slice(killed);
      for (let i = 0; i < left; i++) gone.push({ at: frames, state: i < killed ? "killed" : "stopped" });
    }
    lastWorkers = workers;
    lastRetried = retried;
    gone = gone.filter((g) => frames - g.at < KILLED_SHOWN_FRAMES);
    asked = asked.filter((n) => frames - n < KILLED_SHOWN_FRAMES);
  }

  // The boxes of the pool: busy first, then idle, then the recently killed.
  function boxStates(size, busy, retiring, doomed, left) {
    const states = [];
    for (let i = 0; i < size; i++) {
      if (i < busy) {
        const fromEnd = busy - 1 - i;
        states.push(fromEnd < retiring ? "leaving" : fromEnd < retiring + doomed ? "doomed" : "busy");
      } else states.push("idle");
    }
    for (const g of left) states.push(g.state);
    return states;
  }

  function push(frame) {
    const m = frame.metrics || {};
    const p = frame.picture || {};
    const mode = p.mode || "async";
    const sync = mode === "sync";
    const [busyW = 0, idleW = 0, busyT = 0, idleT = 0] = m.pool_counts || [];
    frames += 1;
    noteGone(m);
    const left = sync ? [] : gone;
    const killed = left.filter((g) => g.state === "killed").length;
    const size = sync ? busyT + idleT : busyW + idleW;
    const busy = sync ? busyT : busyW;
    const states = boxStates(size, busy, sync ? 0 : p.retiring || 0, sync ? 0 : p.doomed || 0, left);
    const boxes = Math.min(MAX_BOXES, states.length);
    const key = `${mode}:${boxes}`;
    if (key !== shape) {
      build(mode, boxes);
      shape = key;
    }
    const P = parts;
    const waiting = sync ? p.requests_waiting || 0 : p.jobs_waiting || 0;
    const arrivals = m.arrivals_per_s_recent || 0;
    P.users.update({ state: `${format(arrivals)} req/s`, detail: "click: burst" });
    if (sync) {
      P.web.update({ state: `${busyT} of ${busyT + idleT} busy`, detail: "do the work", fill: busyT / Math.max(1, busyT + idleT) });
      P.side.update({ state: "unused", detail: `${busyW + idleW} idle` });
    } else {
      P.web.update({ state: "enqueue, answer", detail: `${busyT} of ${busyT + idleT} busy` });
    }
    P.q.update(waiting, sync ? `Requests waiting for a thread: ${format(waiting)}` : `Job queue: ${format(waiting)} waiting`);
    P.modeText.textContent = sync ? "Sync: the thread does the job" : "Async: workers do the jobs";
    P.poolTitle.textContent = sync
      ? `Web threads doing the work: ${busyT} of ${busyT + idleT} busy`
      : `Workers: ${busyW} of ${busyW + idleW} busy${killed ? `, ${killed} killed` : ""}`;
    P.pool.forEach((box, i) => {
      const last = i === MAX_BOXES - 1 && states.length > MAX_BOXES;
      if (last) {
        const rest = states.slice(i);
        const restBusy = rest.filter((s) => s !== "idle" && s !== "killed" && s !== "stopped").length;
        box.update({ name: `+${rest.length}`, state: restBusy ? "busy" : "idle", detail: `${restBusy} busy`, down: false, fill: restBusy / rest.length });
        return;
      }
      const state = states[i];
      box.update({
        name: `${sync ? "T" : "W"}${i + 1}`,
        state,
        detail: "",
        down: state === "killed" || state === "stopped",
        fill: state === "busy" || state === "leaving" || state === "doomed" ? 1 : 0,
      });
    });
    const done = m.completed || 0;
    const fails = sync ? `Timed out: ${format(m.timed_out || 0)}` : `Turned away: ${format(m.rejected || 0)}`;
    P.done.textContent = `Done: ${format(done)} jobs`;
    P.failed.textContent = fails;

    // Dots: a sample of what moved in this frame.
    const arrived = m.arrived || 0;
    const newArrivals = lastArrived === null || arrived < lastArrived ? 0 : arrived - lastArrived;
    lastArrived = arrived;
    const enqueued = eventCount(frame, "job.enqueued");
    const started = eventCount(frame, "job.started");
    const finished = eventCount(frame, "job.done");
    const failedNow = eventCount(frame, "job.rejected") + eventCount(frame, "job.timed_out");
    const poolCenter = P.pool.length ? P.pool[Math.floor(P.pool.length / 2)].bottom() : P.doneAt;
    pic.dots.send(P.users.right(), P.web.left(), sample(newArrivals));
    pic.dots.send(P.web.bottom(), P.qCenter, sample(sync ? Math.max(0, newArrivals - started) : enqueued));
    pic.dots.send({ x: P.qCenter.x, y: 122 }, { x: P.qCenter.x, y: ROW_Y }, sample(started));
    pic.dots.send(poolCenter, P.doneAt, sample(finished), "is-ok");
    pic.dots.send(P.users.bottom(), P.failAt, sample(failedNow), "is-error");
    if (reduced) {
      P.toWeb.update({ label: `${format(newArrivals)} in` });
      P.toQueue.update({ label: sync ? "" : `${format(enqueued)} queued` });
      P.toPool.update({ label: `${format(started)} started` });
    }
    const parts2 = [];
    if (sync) {
      parts2.push(`Sync mode: ${busyT} of ${busyT + idleT} web threads busy doing the work`);
      parts2.push(`${format(waiting)} request${waiting === 1 ? "" : "s"} waiting for a thread`);
      parts2.push(`${format(m.timed_out || 0)} timed out so far`);
    } else {
      parts2.push(`Async mode: ${busyW} of ${busyW + idleW} workers busy`);
      parts2.push(`${format(waiting)} job${waiting === 1 ? "" : "s"} waiting in the queue`);
      if (killed) parts2.push(`${killed} worker${killed === 1 ? "" : "s"} just killed`);
      if (p.retiring) parts2.push(`${p.retiring} leaving after their job`);
      parts2.push(`${format(m.rejected || 0)} turned away so far`);
    }
    pic.say(`${parts2.join("; ")}.`);
    pic.refreshActions();
  }

  return {
    push,
    reset() {
      pic.reset();
      gone = [];
      asked = [];
      frames = 0;
      lastWorkers = null;
      lastRetried = null;
      lastArrived = null;
      shape = "";
      clear();
      parts = null;
    },
  };
}
