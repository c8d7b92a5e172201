// The deploy engine's live picture: the balancer, the rollout's progress, and each
// server with its fleet, version (old or new) and state (serving, updating,
// starting, out of the pool, failing, crashed, stopped). Requests are dots from
// the balancer to the servers in service, failed ones red. A server is a button:
// it kills the server's process, or restarts a crashed one.
import {
  FLEET_BOX_H as BOX_H, eventCount, fanOut, fleetBoxes, fleetGrid, fleetNames, fleetPicture, format,
  link, moreBox, node, redrawOnChange, reducedMotion, sample, svg,
} from "./common.js";

const SHOWN = 18; // server boxes drawn; the rest are summed up in the last one
const TOP = 112;
const DOWN = new Set(["crashed", "failing", "stopped"]);

function split(name) {
  const m = /^([a-z]+)(\d+)$/.exec(name);
  return m ? { fleet: m[1], number: Number(m[2]) } : { fleet: "blue", number: 1 };
}

export default function mount(root, ctx) {
  const reduced = reducedMotion();
  let pic = null;
  let parts = null;
  let latest = null;

  function stateOf(name) {
    if (!latest) return "serving";
    const i = (latest.metrics.server_names || []).indexOf(name);
    const states = (latest.picture || {}).states || [];
    return i < 0 ? "serving" : states[i];
  }

  function build(shownNames, rest) {
    const grid = fleetGrid(shownNames.length + (rest ? 1 : 0), { top: TOP });
    const height = TOP + grid.rows * (BOX_H + 8) + 4;
    pic = fleetPicture(pic, root, ctx, { title: "The balancer, the rollout and the servers", height });
    const { links, nodes, labels } = pic.layers;
    const balancer = node(nodes, { x: 4, y: 30, w: 150, h: BOX_H, name: "Balancer" });
    const tool = node(nodes, { x: 166, y: 30, w: 230, h: BOX_H, name: "Deploy tool" });
    // The rollout's progress: a bar over the deploy tool, and the same in words.
    labels.append(svg("rect", { x: 296, y: 8, width: 100, height: 12, rx: 3, fill: "none", stroke: "var(--muted)" }));
    const bar = svg("rect", { x: 296, y: 8, width: 0, height: 12, rx: 3, fill: "var(--accent)" });
    const caption = svg("text", { x: 4, y: 18, class: "pic-detail" });
    labels.append(bar, caption);
    const { boxes: servers, restBox } = fleetBoxes(nodes, grid, shownNames, rest, (box, name, k) => {
      const line = link(links, fanOut(balancer, k % grid.cols, grid.cols), box.top(), { arrow: pic.arrow });
      const { fleet, number } = split(name);
      pic.action(box.el, () => `${stateOf(name) === "crashed" ? "Restart" : "Kill"} server ${name}`, () => {
        const command = stateOf(name) === "crashed" ? "restart_server" : "kill_server";
        ctx.command(command, { fleet, number });
      });
      return { name, box, line };
    });
    parts = { balancer, tool, bar, caption, servers, restBox };
  }

  const redraw = redrawOnChange(build);

  function push(frame) {
    const m = frame.metrics || {};
    const p = frame.picture || {};
    const names = m.server_names || [];
    const versions = m.server_versions || [];
    const states = p.states || [];
    const rps = m.server_rps_recent || [];
    latest = frame;
    const { shown: shownNames, rest } = fleetNames(names, SHOWN);
    redraw(`${shownNames.join(",")}|${rest > 0}`, shownNames, rest > 0);
    const newest = p.newest || Math.max(0, ...versions);
    const index = new Map(names.map((n, i) => [n, i]));
    const ok = eventCount(frame, "request.ok");
    const failed = eventCount(frame, "request.error");
    parts.balancer.update({
      state: `${m.capacity || 0} in service`,
      detail: `${p.live_fleet || "blue"} fleet · ${format(m.requests_per_s_recent || 0)}/s`,
      down: !m.capacity,
    });
    const prog = p.progress;
    parts.tool.update({
      state: m.phase || "idle",
      detail: prog ? `to v${prog.target}: ${prog.done} of ${prog.total} done` : `release v${m.release || 1}`,
      highlight: Boolean(prog),
    });
    const share = prog && prog.total ? prog.done / prog.total : 0;
    parts.bar.setAttribute("width", String(100 * share));
    parts.caption.textContent = prog
      ? `Rollout to v${prog.target}: ${prog.done} of ${prog.total} servers done`
      : `No rollout in progress`;
    const total = rps.reduce((a, b) => a + b, 0) || 1;
    const serving = [];
    for (const s of parts.servers) {
      const i = index.get(s.name);
      if (i === undefined) continue;
      const state = states[i] || "serving";
      const v = versions[i] || 0;
      const age = v === 0 ? "no version" : v === newest ? `v${v} new` : `v${v} old`;
      s.box.update({ state, detail: age, fill: (rps[i] || 0) / total, down: DOWN.has(state), highlight: state === "updating" || state === "starting" });
      s.line.update({ dashed: state !== "serving" && state !== "crashed", active: state === "serving", label: reduced && state === "serving" ? `${Math.round(rps[i] || 0)}/s` : "" });
      if (state === "serving" || state === "crashed") serving.push({ s, weight: rps[i] || 0, crashed: state === "crashed" });
    }
    moreBox(parts.restBox, names.slice(parts.servers.length), (others) => ({
      state: `${others.filter((n) => states[index.get(n)] === "serving").length} serving`,
    }));
    // Dots: a sample of the frame's requests, to the servers in proportion to
    // their traffic; failed ones red (to a crashed server, or at the balancer).
    const dots = sample(ok + failed);
    const red = ok + failed ? Math.round((dots * failed) / (ok + failed)) : 0;
    for (let k = 0; k < dots; k++) {
      const target = pick(serving, k / Math.max(dots, 1));
      const to = target ? target.s.box.top() : { x: parts.balancer.bottom().x, y: TOP - 6 };
      pic.dots.send(target ? target.s.line.from : parts.balancer.bottom(), to, 1, k < red ? "is-error" : "");
    }
    pic.refreshActions();
    pic.say(sentence(m, p, names, states, failed));
  }

  return {
    push,
    reset() {
      latest = null;
      if (pic) pic.reset();
    },
  };
}

// The server at position `u` (0..1) of the cumulative traffic weights.
function pick(list, u) {
  const total = list.reduce((a, e) => a + e.weight, 0);
  if (!list.length) return null;
  if (!total) return list[Math.floor(u * list.length) % list.length];
  let acc = 0;
  for (const e of list) {
    acc += e.weight / total;
    if (u < acc) return e;
  }
  return list[list.length - 1];
}

function sentence(m, p, names, states, failed) {
  const serving = states.filter((s) => s === "serving").length;
  const parts = [`${serving} of ${names.length} servers serving on the ${p.live_fleet || "blue"} fleet`];
  for (const word of ["crashed", "failing", "updating", "starting"]) {
    const who = names.filter((n, i) => states[i] === word);
    if (who.length) parts.push(`${who.slice(0, 3).join(", ")}${who.length > 3 ? ` and ${who.length - 3} more` : ""} ${word}`);
  }
  if (p.progress) parts.push(`rollout to v${p.progress.target}: ${p.progress.done} of ${p.progress.total} done`);
  else parts.push(`release v${m.release || 1}, no rollout`);
  parts.push(`${format(m.errors_per_s_recent || 0)} failed requests/s`);
  if (failed && !serving) parts.push("every request fails at the balancer");
  return `${parts.join("; ")}.`;
}
