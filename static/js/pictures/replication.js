// The live picture of replication: clients, the master(s) and the replicas, each
// replica's backlog of received but unapplied writes as a queue, its lag in words.
// Writes are dots from the clients to a master and on to the replicas; reads are
// dots from the clients to wherever reads go. A replica is a button: pause it, kill
// it once paused, or add a new one where a dead one was; a master is a button that
// kills it (the engine promotes the most up-to-date replica).
import { Picture, eventCount, format, link, node, queue, reducedMotion, sample } from "./common.js";

const COLS = 5;
const CELL = 78;
const BOX_W = 70;
const BOX_H = 50;
const ROW_H = 84;
const TOP = 118; // where the replicas' grid starts

function lagWords(ms) {
  if (!(ms > 0)) return "lag 0 ms";
  return ms < 1000 ? `lag ${Math.round(ms)} ms` : `lag ${format(ms / 1000)} s`;
}

export default function mount(root, ctx) {
  const pic = new Picture(root, ctx, {
    title: "Master and replicas: writes flow from the master, each replica applies its backlog in order",
    height: TOP + ROW_H,
  });
  const reduced = reducedMotion();
  let shape = "";
  let parts = null;
  let lastReads = null;
  let readTurn = 0;

  function clearLayers() {
    for (const name of ["links", "nodes", "labels"]) pic.layers[name].replaceChildren();
    pic.dots.clear();
    pic.actions = [];
  }

  // Draw the servers of this shape (names and roles); only called when it changes.
  function build(servers) {
    clearLayers();
    // Live masters first, next to the clients; a dead one to their right.
    const masters = servers.filter((s) => s[1] === "master" && s[4] !== "down")
      .concat(servers.filter((s) => s[1] === "master" && s[4] === "down"));
    const replicas = servers.filter((s) => s[1] !== "master");
    const rows = Math.max(1, Math.ceil(replicas.length / COLS));
    pic.svg.setAttribute("viewBox", `0 0 ${pic.width} ${TOP + rows * ROW_H}`);
    const byName = {};
    const clients = node(pic.layers.nodes, { x: 6, y: 8, w: 84, h: 52, name: "Clients" });
    // Room for the clients' writes to travel; more masters (a dead one beside the
    // promoted one) share the rest of the row.
    const start = masters.filter((s) => s[4] !== "down").length > 1 ? 104 : 170;
    const step = Math.min(112, (396 - start) / Math.max(1, masters.length));
    masters.forEach((s, i) => {
      byName[s[0]] = { kind: "master", box: node(pic.layers.nodes, { x: start + i * step, y: 8, w: Math.min(90, step - 10), h: 52, name: s[0] }) };
    });
    replicas.forEach((s, i) => {
      const col = i % COLS;
      const row = Math.floor(i / COLS);
      const x = 6 + col * CELL;
      const y = TOP + row * ROW_H;
      byName[s[0]] = {
        kind: "replica",
        box: node(pic.layers.nodes, { x, y, w: BOX_W, h: BOX_H, name: s[0] }),
        queue: queue(pic.layers.labels, { x: x + 2, y: y + BOX_H + 8, slots: 4, size: 9, gap: 2 }),
      };
    });
    const links = {};
    const first = masters.length ? byName[masters[0][0]].box : null;
    if (first) links.writes = link(pic.layers.links, clients.right(), first.left(), { arrow: pic.arrow });
    for (const s of servers) {
      const part = byName[s[0]];
      const src = byName[s[2]];
      if (!src || !s[2]) continue;
      if (part.kind === "master") {
        // two masters replicate to each other: one line between them
        if (s[0] < s[2]) links[`${s[2]}>${s[0]}`] = link(pic.layers.links, src.box.right(), part.box.left(), { label: "both ways" });
        continue;
      }
      links[`${s[2]}>${s[0]}`] = link(pic.layers.links, src.box.bottom(), part.box.top(), { arrow: pic.arrow });
    }
    for (const [name, part] of Object.entries(byName)) {
      part.name = name;
      pic.action(part.box.el, () => actionLabel(part), () => activate(part));
    }
    return { clients, byName, links };
  }

  function number(name) {
    return Number(name.slice(1));
  }

  function actionLabel(part) {
    const s = part.state || "up";
    if (part.kind === "master") return s === "down" ? `Master ${part.name} is down` : `Kill master ${part.name} (a replica is promoted)`;
    if (s === "down") return `Replica ${part.name} is down: add a new replica`;
    if (s === "paused") return `Kill replica ${part.name} (it is paused)`;
    return `Pause replica ${part.name} for 5 s`;
  }

  function activate(part) {
    const s = part.state || "up";
    if (part.kind === "master") {
      if (s === "down") return ctx.refuse && ctx.refuse(`Master ${part.name} is already down.`);
      const live = Object.values(parts.byName).filter((p) => p.kind === "master" && p.state !== "down");
      const index = live.indexOf(part);
      return ctx.command("kill_master", { master: index + 1 });
    }
    if (s === "down") return ctx.command("add_replica", {});
    if (s === "paused") return ctx.command("kill_replica", { replica: number(part.name) });
    return ctx.command("pause_replica", { replica: number(part.name), seconds: 5 });
  }

  function push(frame) {
    const picture = frame.picture;
    if (!picture) return;
    const servers = picture.servers || [];
    const key = servers.map((s) => `${s[0]}:${s[1]}:${s[2]}:${s[1] === "master" && s[4] === "down"}`).join(",");
    if (key !== shape) {
      shape = key;
      parts = build(servers);
    }
    const m = frame.metrics;
    const lag = {};
    (m.node_names || []).forEach((name, i) => { lag[name] = (m.node_lag_ms || [])[i]; });
    let up = 0;
    let waiting = 0;
    const paused = [];
    const down = [];
    let worst = null;
    const targets = [];
    for (const s of servers) {
      const [name, role, , backlog, state] = s;
      const part = parts.byName[name];
      part.state = state;
      const isDown = state === "down";
      if (role === "master") {
        part.box.update({ state: isDown ? "down" : "master", detail: isDown ? "dead" : `${format(Math.round(m.writes_per_s_recent || 0))} w/s`, down: isDown, highlight: !isDown });
        if (!isDown && picture.reads_to !== "replicas" && picture.reads_to !== "sticky") targets.push(part);
        continue;
      }
      const words = isDown ? "down" : state === "paused" ? "paused" : "replica";
      part.box.update({ state: words, detail: isDown ? "dead" : lagWords(lag[name]), down: isDown });
      part.queue.update(isDown ? 0 : backlog);
      if (isDown) {
        down.push(name);
        continue;
      }
      up += 1;
      waiting += backlog;
      if (state === "paused") paused.push(name);
      if (worst === null || (lag[name] || 0) > (lag[worst] || 0)) worst = name;
      if (picture.reads_to !== "master") targets.push(part);
    }
    pic.refreshActions();
    const writes = eventCount(frame, "replication.write");
    const applied = eventCount(frame, "replication.applied");
    const reads = lastReads === null ? 0 : Math.max(0, (m.reads || 0) - lastReads);
    lastReads = m.reads || 0;
    const masterParts = Object.values(parts.byName).filter((p) => p.kind === "master" && p.state !== "down");
    if (masterParts.length && parts.links.writes) {
      pic.dots.send(parts.clients.right(), masterParts[0].box.left(), sample(writes));
      parts.links.writes.update({ label: reduced ? `${format(writes)} writes` : "writes", active: writes > 0 });
    }
    const followers = Object.values(parts.byName).filter((p) => p.kind === "replica" && p.state !== "down");
    const perReplica = applied / Math.max(1, followers.length + (masterParts.length > 1 ? masterParts.length : 0));
    for (const s of servers) {
      const l = parts.links[`${s[2]}>${s[0]}`];
      const part = parts.byName[s[0]];
      if (!l || part.kind !== "replica") continue;
      const live = s[4] !== "down";
      l.update({ dashed: !live || s[4] === "paused" });
      if (live && s[4] !== "paused") pic.dots.send(l.from, l.to, Math.min(2, sample(perReplica)));
    }
    const readDots = sample(reads);
    for (let i = 0; i < readDots && targets.length; i++) {
      const target = targets[readTurn++ % targets.length];
      pic.dots.send(parts.clients.bottom(), target.box.center(), 1, "is-ok");
    }
    parts.clients.update({ state: `${format(Math.round(m.writes_per_s_recent || 0))} w/s`, detail: `${format(Math.round(m.reads_per_s_recent || 0))} reads/s` });
    const masterNames = masterParts.map((p) => p.name);
    const total = followers.length + down.length;
    const sentence = [
      masterNames.length ? `${masterNames.length > 1 ? "Masters" : "Master"} ${masterNames.join(" and ")} take${masterNames.length > 1 ? "" : "s"} ${format(Math.round(m.writes_per_s_recent || 0))} writes/s` : "No master is up",
      `${up} of ${total} replicas up`,
    ];
    if (paused.length) sentence.push(`${paused.join(", ")} paused`);
    if (down.length) sentence.push(`${down.join(", ")} down`);
    if (worst) sentence.push(`largest lag ${lagWords(lag[worst]).slice(4)} (${worst})`);
    sentence.push(`${format(waiting)} ${waiting === 1 ? "write" : "writes"} waiting to be applied`);
    pic.say(`${sentence.join("; ")}.`);
  }

  return {
    push,
    reset() {
      shape = "";
      parts = null;
      lastReads = null;
      clearLayers();
      pic.reset();
    },
  };
}
