// Live picture of the local-cache engine: the app servers drawn as the sharding
// engine draws its shards (each server holds the users routed to it), each with its
// own cache's hit ratio, and the users a resize moved travelling to their new server.
import { splitPicture } from "./sharding.js";

const hitRatio = (m, i) => {
  const ratio = (m.hit_ratio_per_server || [])[i];
  return Number.isFinite(ratio) ? `hit ${ratio.toFixed(2)}` : null;
};

export default splitPicture({
  noun: "server",
  keys: "users",
  title: "App servers, the users routed to each, and their caches",
  detail: hitRatio,
});
