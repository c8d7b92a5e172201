// Live picture of the local-cache engine: the app servers drawn as the sharding
// engine draws its shards (each server holds the users routed to it), with the
// users a resize moved travelling to their new server.
export { default } from "./sharding.js";
