// The sessions engine's live picture: the users, the balancer, each server with
// the sessions in its memory, and the central store (cache or database) when the
// strategy keeps sessions there. Users' requests are dots; those sent back to log
// in are red. A server is a button: it kills the server, or restarts a dead one.
// What the last kill cost is written under the picture: the sessions lost, and
// their share of all sessions (1/n expected with local sessions).
import {
  FLEET_BOX_H as BOX_H, eventCount, fanOut, fleetBoxes, fleetGrid, fleetNames, fleetPicture, format,
  link, moreBox, node, redrawOnChange, reducedMotion, sample, serverNumber, serverUp, svg,
} from "./common.js";

const SHOWN = 18; // server boxes drawn; the rest are summed up in the last one
const TOP = 104;

const ROUTING = { local: "round robin", sticky: "sticky cookie", central_cache: "round robin", central_db: "round robin" };

export default function mount(root, ctx) {
  const reduced = reducedMotion();
  let pic = null;
  let parts = null;
  let latest = null;

  function build(shownNames, rest, central) {
    const grid = fleetGrid(shownNames.length + (rest ? 1 : 0), { top: TOP });
    const height = TOP + (grid.rows || 1) * (BOX_H + 8) + 22;
    pic = fleetPicture(pic, root, ctx, { title: "Users, the balancer, the servers and the session store", height });
    const { links, nodes, labels } = pic.layers;
    const users = node(nodes, { x: 4, y: 8, w: 120, h: BOX_H, name: "Users" });
    const balancer = node(nodes, { x: 138, y: 8, w: 124, h: BOX_H, name: "Balancer" });
    link(links, users.right(), balancer.left(), { arrow: pic.arrow });
    const store = central ? node(nodes, { x: 276, y: 8, w: 120, h: BOX_H, name: central === "central_db" ? "Database" : "Cache" }) : null;
    const { boxes: servers, restBox } = fleetBoxes(nodes, grid, shownNames, rest, (box, name, k) => {
      const line = link(links, fanOut(balancer, k % grid.cols, grid.cols), box.top(), { arrow: pic.arrow });
      if (store) link(links, box.top(), store.bottom(), { dashed: true });
      pic.action(box.el, () => `${serverUp(latest, name) ? "Kill" : "Restart"} server ${serverNumber(name)}`, () => {
        ctx.command(serverUp(latest, name) ? "kill" : "restart", { server: serverNumber(name) });
      });
      return { name, box, line };
    });
    const lost = svg("text", { x: 4, y: height - 6, class: "pic-detail" });
    labels.append(lost);
    parts = { users, balancer, store, servers, restBox, lost };
  }

  const redraw = redrawOnChange(build);

  function push(frame) {
    const m = frame.metrics || {};
    const names = m.server_names || [];
    const up = m.server_up || [];
    const held = m.server_sessions || [];
    latest = frame;
    const central = m.store === "central_cache" || m.store === "central_db" ? m.store : "";
    const { shown: shownNames, rest } = fleetNames(names, SHOWN);
    redraw(`${shownNames.join(",")}|${rest > 0}|${central}`, shownNames, rest > 0, central);
    const total = held.reduce((a, b) => a + b, 0) + (m.central_sessions || 0);
    const lastLoss = (frame.picture || {}).last_loss || null;
    const index = new Map(names.map((n, i) => [n, i]));
    const requests = eventCount(frame, "sessions.request");
    const forced = eventCount(frame, "sessions.forced_logout");
    const alive = up.filter(Boolean).length;
    parts.users.update({ state: `${format(m.users_logged_in || 0)} logged in`, detail: `${format(m.forced_logouts_per_s_recent || 0)} logouts/s` });
    parts.balancer.update({ state: ROUTING[m.store] || "round robin", detail: `${format(m.requests_per_s_recent || 0)} req/s`, down: !alive });
    if (parts.store) parts.store.update({ state: `${format(m.central_sessions || 0)} sessions`, detail: "shared by all" });
    const targets = [];
    for (const s of parts.servers) {
      const i = index.get(s.name);
      if (i === undefined) continue;
      const isUp = Boolean(up[i]);
      const lostHere = lastLoss && lastLoss.server === serverNumber(s.name);
      s.box.update({
        state: isUp ? "up" : "down",
        detail: central ? "no sessions kept" : `${format(held[i] || 0)} sessions`,
        fill: total && !central ? (held[i] || 0) / total : 0,
        down: !isUp,
        highlight: Boolean(lostHere && isUp),
      });
      s.line.update({ dashed: !isUp, active: isUp, label: reduced && isUp ? format((m.requests_per_s_recent || 0) / Math.max(alive, 1)) : "" });
      if (isUp) targets.push(s);
    }
    moreBox(parts.restBox, names.slice(parts.servers.length), (others) => ({
      state: `${others.filter((x) => up[index.get(x)]).length} up`,
    }));
    parts.lost.textContent = lastLoss
      ? `Last loss: server ${lastLoss.server}, ${format(lastLoss.sessions)} sessions (${Math.round(lastLoss.share * 100)}% of all), ${format(lastLoss.carts)} carts`
      : `Sessions lost so far: ${format(m.lost_sessions || 0)}`;
    const dots = sample(requests);
    const red = requests ? Math.round((dots * forced) / requests) : 0;
    pic.dots.send(parts.users.right(), parts.balancer.left(), Math.min(dots, 3));
    for (let k = 0; k < dots && targets.length; k++) {
      const t = targets[(k * 5 + Math.round(frame.t || 0)) % targets.length];
      pic.dots.send(t.line.from, t.box.top(), 1, k < red ? "is-error" : "");
    }
    pic.refreshActions();
    pic.say(sentence(m, names, up, lastLoss));
  }

  return {
    push,
    reset() {
      latest = null;
      if (pic) pic.reset();
    },
  };
}

function sentence(m, names, up, lastLoss) {
  const alive = up.filter(Boolean).length;
  const down = names.filter((n, i) => !up[i]).map((n) => `server ${n.replace(/^s/, "")}`);
  const parts = [`${alive} of ${names.length} servers up`];
  if (down.length) parts.push(`${down.slice(0, 3).join(", ")}${down.length > 3 ? ` and ${down.length - 3} more` : ""} down`);
  const where = m.store === "central_cache" ? "in the shared cache" : m.store === "central_db" ? "in the shared database" : m.store === "sticky" ? "in each server's memory, users pinned by a cookie" : "in each server's memory";
  parts.push(`sessions live ${where}`);
  parts.push(`${format(m.users_logged_in || 0)} users logged in`);
  if (lastLoss) parts.push(`the last loss took ${format(lastLoss.sessions)} sessions (${Math.round(lastLoss.share * 100)}%) with server ${lastLoss.server}`);
  else if (m.lost_sessions) parts.push(`${format(m.lost_sessions)} sessions lost`);
  return `${parts.join("; ")}.`;
}
