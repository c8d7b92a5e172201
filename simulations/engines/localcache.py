"""Local caches: an LRU cache inside each app server, users routed by id or at random."""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from ..theory import zipf_probabilities
from ..theory.routing import random_routing_hit_ratio, routed_hit_ratio
from .base import Command, Event, Metric, Param, TheoryFigures, Window
from .sharding import MAX_SHARDS, ShardingEngine

ROUTINGS = ("by_id", "random")
HIT_SPAN = 1.0  # seconds: short, so a cold cache's dip shows before it refills
MAX_CACHE = 20_000
_SHARDING_ONLY = {"related", "related_layout"}
_RELABEL = {
    "keys": ("Users", "users", "How many users send requests."),
    "shards": ("App servers", "servers", "How many app servers share the users."),
    "strategy": (
        "Routing rule",
        "",
        "How a user's id picks her server when routing by id. modulo: hash % "
        "servers; range: blocks of consecutive ids; consistent: a hash ring with "
        "virtual nodes.",
    ),
}


def _app_param(param: Param) -> Param:
    if param.name not in _RELABEL:
        return param
    label, unit, help_text = _RELABEL[param.name]
    return Param(
        param.name,
        param.type,
        param.default,
        param.min,
        param.max,
        choices=param.choices,
        unit=unit or param.unit,
        help=help_text,
        label=label,
        step=param.step,
        live=param.live,
        unset=param.unset,
    )


def _app_command(command: Command) -> Command:
    label, help_text = _COMMAND_WORDS[command.name]
    args = tuple(
        # a user's burst is shorter than a key's: a viral post, not a sale
        replace(arg, default=5.0)
        if arg.name == "seconds"
        else replace(arg, **_ARG_WORDS[arg.name])
        if arg.name in _ARG_WORDS
        else arg
        for arg in command.args
    )
    return replace(command, label=label, help=help_text, args=args)


_ARG_WORDS: dict[str, dict[str, Any]] = {
    "shard": {
        "label": "Server",
        "help": "Number of the server to remove; -1 the newest.",
    },
    "key": {"label": "User", "help": "The user who becomes hot."},
    "share": {"help": "Share of all requests that come from the hot user."},
}
_COMMAND_WORDS = {
    "add_shard": (
        "Add server",
        "Add an app server; the routing rule moves users to it.",
    ),
    "remove_shard": (
        "Remove server",
        "Remove an app server; its users move elsewhere.",
    ),
    "hot_key": ("Hot user", "One user gets a burst: a share of all requests."),
}


class LocalCacheEngine(ShardingEngine):
    kind = "localcache"
    title = "Local caches on app servers"
    description = (
        "Each app server keeps an LRU cache of the users it has served. Users "
        "(of Zipf popularity; user 0 is the busiest) are sent to a server by their "
        "id, with hash modulo, id ranges or a consistent-hash ring, or to any "
        "server at random. Add or remove a server and the users routed elsewhere "
        "meet a cold cache: the hit ratio dips, then recovers as it refills."
    )
    params = (
        *(_app_param(p) for p in ShardingEngine.params if p.name not in _SHARDING_ONLY),
        Param(
            "cache_size",
            "int",
            500,
            0,
            MAX_CACHE,
            unit="users per server",
            label="Cache per server",
            help="How many users' data each app server's LRU cache holds.",
        ),
        Param(
            "routing",
            "choice",
            "by_id",
            choices=ROUTINGS,
            label="Routing",
            help="by_id: every request of a user goes to the server her id maps "
            "to; random: any server, so each cache ends up holding the same "
            "popular users.",
        ),
    )
    commands = tuple(_app_command(c) for c in ShardingEngine.commands)
    narration = {
        "shard.rebalance": (
            "Re-routed onto {shards#server}: {moved_keys} users moved "
            "({moved_fraction%}) to a server whose cache has not seen them"
        ),
        "shard.hot_key": "User {key} is hot: {share%} of requests go to server {shard}",
        "shard.hot_key_end": "User {key} has calmed down",
    }
    metric_specs = (
        *(
            m
            for m in ShardingEngine.metric_specs
            if m.name not in ("shards_per_request", "cross_shard_share")
        ),
        Metric(
            "hit_ratio",
            "Hit ratio",
            help="Share of requests their server's cache answered, since the "
            "figures were reset.",
        ),
        Metric(
            "hit_ratio_recent",
            "Hit ratio (last second)",
            help="Share of the last second's requests their server's cache answered.",
        ),
        Metric(
            "hit_ratio_low",
            "Lowest hit ratio since the last re-route",
            help="The lowest one-second hit ratio since servers or routing last "
            "changed: how deep the cold-cache dip went.",
            unset="no re-route yet",
        ),
        Metric(
            "db_reads_per_s",
            "Database reads (last second)",
            "reads/s",
            help="Cache misses, each a read from the database.",
        ),
        Metric(
            "copies_per_user",
            "Copies of each cached user",
            help="Cache entries over distinct users cached: above 1, the servers "
            "hold the same users twice.",
        ),
        Metric("hit_ratio_per_server", "Hit ratio per server", summary=False),
        Metric("cached_per_server", "Users cached per server", "users", summary=False),
    )
    theory_models = {
        "moved_fraction": ShardingEngine.theory_models["moved_fraction"],
        "hit_ratio_recent": "Che's LRU approximation per server (Che et al. 2002)",
    }

    # Topology --------------------------------------------------------------

    def setup(self) -> None:
        self.caches: dict[int, OrderedDict[int, None]] = {}
        self.copies: dict[int, int] = {}
        self.hit_window = Window(span=HIT_SPAN)
        self.hits = self.misses = 0
        self.hit_low = -1.0
        super().setup()
        for sid in self.live:
            self.caches[sid] = OrderedDict()

    def _add(self) -> int:
        sid = super()._add()
        self.caches[sid] = OrderedDict()  # a new server starts cold
        return sid

    def _remove(self, sid: int) -> None:
        super()._remove(sid)
        for key in self.caches.pop(sid):
            self._uncopy(key)

    def _uncopy(self, key: int) -> None:
        left = self.copies[key] - 1
        if left:
            self.copies[key] = left
        else:
            del self.copies[key]

    def _rebalance(self, *args: Any, **kwargs: Any) -> Event:
        self.hit_low = -1.0
        return super()._rebalance(*args, **kwargs)

    def _trim(self, size: int, below: int) -> None:
        """Drop the oldest entries beyond ``size`` and any user id from ``below`` up."""
        for cache in self.caches.values():
            for key in [k for k in cache if k >= below]:
                del cache[key]
                self._uncopy(key)
            while len(cache) > size:
                key, _ = cache.popitem(last=False)
                self._uncopy(key)

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        if name in ("cache_size", "keys"):
            self._trim(self.p["cache_size"], self.p["keys"])
        if name == "routing":
            self.hit_low = -1.0
            self.resized_t = self.now
        return super().on_param_changed(name, old)

    def reset_stats(self) -> None:
        super().reset_stats()
        self.hits = self.misses = 0

    # Running ---------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        rand = self.rng.random
        expo = self.rng.expovariate
        rate = self.p["request_rate"]
        size = self.p["cache_size"]
        anywhere = self.p["routing"] == "random"
        cdf = self._cdf
        owner = self._owner
        live = self.live
        n = len(live)
        last = len(owner) - 1
        caches = self.caches
        copies = self.copies
        counts = [0] * MAX_SHARDS
        hits = [0] * MAX_SHARDS
        t = self.next_request
        events: list[Event] = []
        hot = self.hot
        while t <= end:
            if hot is not None and t > hot[2]:
                events.append({"type": "shard.hot_key_end", "t": hot[2], "key": hot[0]})
                hot = self.hot = None
            if hot is not None and rand() < hot[1]:
                k = hot[0]
            else:
                k = bisect_right(cdf, rand())
                k = k if k < last else last
            sid = live[int(rand() * n)] if anywhere else owner[k]
            counts[sid] += 1
            cache = caches[sid]
            if k in cache:
                cache.move_to_end(k)
                hits[sid] += 1
            elif size:
                cache[k] = None
                copies[k] = copies.get(k, 0) + 1
                if len(cache) > size:
                    old, _ = cache.popitem(last=False)
                    self._uncopy(old)
            t += expo(rate)
        if hot is not None and hot[2] <= end:
            events.append({"type": "shard.hot_key_end", "t": hot[2], "key": hot[0]})
            self.hot = None
        self.next_request = t
        total = sum(counts)
        hit = sum(hits)
        self.hits += hit
        self.misses += total - hit
        self.spread_requests += total
        self.spread_shards += total
        if total:
            amounts = {f"h{sid}": hits[sid] for sid in live}
            amounts.update({f"r{sid}": counts[sid] for sid in live})
            self.hit_window.add(self.now, hits=hit, requests=total, **amounts)
        recent = self.hit_window.total("requests", end)
        if recent and self.resized_t >= 0:
            ratio = self.hit_window.total("hits", end) / recent
            if self.hit_low < 0 or ratio < self.hit_low:
                self.hit_low = ratio
        return self._count(counts, total, events)

    def metrics(self) -> dict[str, Any]:
        figures = super().metrics()
        del figures["shards_per_request"], figures["cross_shard_share"]
        w, now = self.hit_window, self.now
        requests = w.total("requests", now)
        served = self.hits + self.misses
        per_server = []
        for sid in self.live:
            r = w.total(f"r{sid}", now)
            per_server.append(w.total(f"h{sid}", now) / r if r else 0.0)
        entries = sum(len(c) for c in self.caches.values())
        figures.update(
            {
                "hit_ratio": self.hits / served if served else 0.0,
                "hit_ratio_recent": w.total("hits", now) / requests
                if requests
                else 0.0,
                "hit_ratio_low": self.hit_low,
                "db_reads_per_s": (requests - w.total("hits", now)) / w.seconds(now),
                "copies_per_user": entries / len(self.copies) if self.copies else 0.0,
                "hit_ratio_per_server": per_server,
                "cached_per_server": [len(self.caches[sid]) for sid in self.live],
            }
        )
        return figures

    # Theory ----------------------------------------------------------------

    def theory_key(self) -> tuple[Any, ...]:
        routing = self.p["routing"]
        layout: tuple[Any, ...] = ()
        if routing == "by_id":
            layout = (self.p["strategy"], self.p["vnodes"], self.seed, self._topology())
        return (
            self.resized,
            routing,
            self.p["cache_size"],
            self.p["keys"],
            self.p["zipf_s"],
            self.hot is not None,
            layout,
        )

    def compute_theory(self) -> TheoryFigures:
        theory = self._moved_theory()
        size, keys, skew = self.p["cache_size"], self.p["keys"], self.p["zipf_s"]
        if self.hot is not None:
            theory["hit_ratio_recent"] = (
                "a hot user changes who is popular: the prediction is for "
                "ordinary traffic"
            )
        elif self.p["routing"] == "random":
            theory["hit_ratio_recent"] = (
                random_routing_hit_ratio(keys, skew, size),
                "random routing: every server caches as one cache would alone",
            )
        else:
            theory["hit_ratio_recent"] = (
                routed_hit_ratio(zipf_probabilities(keys, skew), self._owner, size),
                "routing by id: Che's approximation on each server's own users",
            )
        return theory
