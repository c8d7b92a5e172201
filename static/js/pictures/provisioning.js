// The provisioning engine's live picture: the auto-scaling group. The balancer
// with the requests waiting, the CPU the group watches against its threshold,
// the image new instances boot from, and each instance: in service (its workers
// busy), booting (how far through a typical boot), or draining. Requests are
// dots to the instances in service, dropped ones red. An instance is a button:
// it kills the instance (the group replaces it).
import {
  FLEET_BOX_H as BOX_H, eventCount, fanOut, fleetBoxes, fleetGrid, fleetNames, fleetPicture, format,
  link, moreBox, node, queue, redrawOnChange, reducedMotion, sample, svg,
} from "./common.js";

const SHOWN = 18; // instance boxes drawn; the rest are summed up in the last one
const TOP = 112;

const iid = (name) => Number(String(name).replace(/^i-/, ""));

export default function mount(root, ctx) {
  const reduced = reducedMotion();
  let pic = null;
  let parts = null;

  function build(shownNames, rest) {
    const grid = fleetGrid(shownNames.length + (rest ? 1 : 0), { top: TOP });
    const height = TOP + (grid.rows || 1) * (BOX_H + 8) + 4;
    pic = fleetPicture(pic, root, ctx, { title: "The auto-scaling group", height });
    const { links, nodes } = pic.layers;
    // The requests queued on the instances, over the row of boxes, out of the
    // way of the balancer's links below.
    const waiting = queue(nodes, { x: 4, y: 5, slots: 10, size: 10, gap: 2, label: "" });
    const balancer = node(nodes, { x: 4, y: 26, w: 128, h: BOX_H, name: "Balancer" });
    const cpu = node(nodes, { x: 138, y: 26, w: 124, h: BOX_H, name: "CPU" });
    const image = node(nodes, { x: 268, y: 26, w: 128, h: BOX_H, name: "Image" });
    const { boxes: instances, restBox } = fleetBoxes(nodes, grid, shownNames, rest, (box, name, k) => {
      const line = link(links, fanOut(balancer, k % grid.cols, grid.cols), box.top(), { arrow: pic.arrow });
      pic.action(box.el, () => `Kill instance ${name}`, () => ctx.command("kill_instance", { instance: iid(name) }));
      return { name, box, line };
    });
    const waitingWords = svg("text", { x: 200, y: 14, class: "pic-detail" });
    pic.layers.labels.append(waitingWords);
    parts = { balancer, cpu, image, waiting, waitingWords, instances, restBox };
  }

  const redraw = redrawOnChange(build);

  function push(frame) {
    const m = frame.metrics || {};
    const p = frame.picture || {};
    const names = m.instance_names || [];
    const states = m.instance_state || [];
    const versions = m.instance_versions || [];
    const busy = p.busy || [];
    const queued = p.queued || [];
    const boot = p.boot || [];
    const { shown: shownNames, rest } = fleetNames(names, SHOWN);
    redraw(`${shownNames.join(",")}|${rest > 0}`, shownNames, rest > 0);
    const workers = p.workers || 1;
    const threshold = p.threshold;
    const index = new Map(names.map((n, i) => [n, i]));
    const served = eventCount(frame, "request.served");
    const dropped = eventCount(frame, "request.dropped");
    const waiting = queued.reduce((a, b) => a + b, 0);
    parts.balancer.update({
      state: `${format(m.offered_rps || 0)} req/s`,
      detail: `capacity ${format(m.capacity_rps || 0)}/s`,
      down: !m.instances,
    });
    parts.waiting.update(waiting, "");
    parts.waitingWords.textContent = `${format(waiting)} queued · ${format(m.dropped_rps_recent || 0)} dropped/s`;
    const cpuShare = Number(m.cpu) || 0;
    parts.cpu.update({
      state: `${Math.round(cpuShare * 100)}% busy`,
      detail: threshold ? `scale out above ${Math.round(threshold * 100)}%` : "at the last check",
      fill: cpuShare,
      highlight: threshold ? cpuShare > threshold : false,
    });
    parts.image.update({
      state: `${p.image || "golden"}${p.image === "bare" ? " system" : ` v${m.image_version || 1}`}`,
      detail: p.baking ? "baking a new image" : `release v${m.release_version || 1}`,
      highlight: Boolean(p.baking),
    });
    const targets = [];
    for (const s of parts.instances) {
      const i = index.get(s.name);
      if (i === undefined) continue;
      const state = states[i] || "in service";
      let words = state;
      let detail = `v${versions[i] || "?"} · ${busy[i] || 0}/${workers}`;
      let fill = (busy[i] || 0) / workers;
      if (state === "booting") {
        detail = `${Math.round((boot[i] || 0) * 100)}% done`;
        fill = boot[i] || 0;
      } else if ((m.instance_drift || [])[i]) {
        detail = `v${versions[i]} (not the release)`;
      }
      s.box.update({ state: words, detail, fill, highlight: state === "booting", down: false });
      s.line.update({ dashed: state !== "in service", active: state === "in service", label: reduced && state === "in service" ? `${busy[i] || 0}+${queued[i] || 0}` : "" });
      if (state === "in service") targets.push(s);
    }
    moreBox(parts.restBox, names.slice(parts.instances.length), (others) => {
      const inService = others.filter((n) => states[index.get(n)] === "in service").length;
      return { state: `${inService} in service`, detail: `${others.length - inService} other` };
    });
    const dots = sample(served + dropped);
    const red = served + dropped ? Math.round((dots * dropped) / (served + dropped)) : 0;
    for (let k = 0; k < dots; k++) {
      if (k < red || !targets.length) {
        pic.dots.send(parts.balancer.bottom(), { x: 140, y: 100 }, 1, "is-error");
      } else {
        const t = targets[(k * 7 + (frame.seq || 0)) % targets.length];
        pic.dots.send(t.line.from, t.box.top(), 1);
      }
    }
    pic.refreshActions();
    pic.say(sentence(m, states, waiting, threshold));
  }

  return {
    push,
    reset() {
      if (pic) pic.reset();
    },
  };
}

function sentence(m, states, waiting, threshold) {
  const count = (word) => states.filter((s) => s === word).length;
  const parts = [`${count("in service")} instances in service`];
  if (count("booting")) parts.push(`${count("booting")} booting`);
  if (count("draining")) parts.push(`${count("draining")} draining`);
  parts.push(`CPU ${Math.round((Number(m.cpu) || 0) * 100)}%${threshold ? ` against a threshold of ${Math.round(threshold * 100)}%` : ""}`);
  parts.push(`${format(m.offered_rps || 0)} requests/s for a capacity of ${format(m.capacity_rps || 0)}`);
  parts.push(`${format(waiting)} queued`);
  if (m.dropped_rps_recent) parts.push(`${format(m.dropped_rps_recent)} dropped/s`);
  if (m.version_drift) parts.push(`${m.version_drift} not on the release`);
  return `${parts.join("; ")}.`;
}
