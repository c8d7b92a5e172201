"""Sharding: keys spread over shards by modulo, ranges or a consistent-hash ring."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from typing import Any, ClassVar

from ..sampling import zipf_cdf
from ..theory.routing import cross_shard_share, shards_touched
from ..theory.storage import (
    consistent_moved_fraction,
    modulo_remap_fraction,
    range_moved_fraction,
)
from .base import (
    Command,
    CommandError,
    Engine,
    Event,
    Metric,
    Param,
    TheoryFigures,
    Window,
)

MASK64 = (1 << 64) - 1
MAX_SHARDS = 64
KEY_SALT = 0x5EED_0F_4B_E1_5
STRATEGIES = ("modulo", "range", "consistent")
LAYOUTS = ("spread", "together")
MAX_RELATED = 8
PICTURE_MOVED_S = 5.0  # simulated seconds a resize's moved keys stay in the picture
Bounds = tuple[tuple[float, int], ...]
Topology = tuple[tuple[int, ...], Bounds]
# What the last re-route was: (strategy, shards before, shards after, ranges
# before, ranges after) for a resize, or ("setting", name) for a changed setting.
Resize = tuple[Any, ...]


def mix64(x: int) -> int:
    """Return the splitmix64 finaliser of ``x``: a stable, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def key_hashes(keys: int) -> array:
    """Return the 64-bit hash of every key name 0..keys-1."""
    return array("Q", [mix64(k ^ KEY_SALT) for k in range(keys)])


class ShardingEngine(Engine):
    kind = "sharding"
    title = "Sharding"
    description = (
        "Requests for keys of Zipf popularity are routed to shards by hash modulo, "
        "by key range or by a consistent-hash ring with virtual nodes. Add or remove "
        "a shard and see how many keys move; make one key hot and see one shard "
        "take the burst. Keys are numbered by popularity (key 0 is the most "
        "popular), so ranges keep popular neighbours together. A request can also "
        "read related rows: spread under their own keys, as in a normalised "
        "schema, they sit on other shards; kept together with the key, one shard "
        "answers."
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param(
            "keys",
            "int",
            10_000,
            100,
            100_000,
            unit="keys",
            label="Keys",
            help="How many distinct keys (rows, users) are stored.",
        ),
        Param(
            "shards",
            "int",
            4,
            1,
            MAX_SHARDS,
            unit="shards",
            label="Shards",
            help="How many shards (database servers) hold the keys.",
        ),
        Param(
            "strategy",
            "choice",
            "consistent",
            choices=STRATEGIES,
            label="Strategy",
            help="modulo: hash % shards; range: contiguous key ranges, a new shard "
            "splits the largest; consistent: a hash ring with virtual nodes.",
        ),
        Param(
            "vnodes",
            "int",
            100,
            1,
            1000,
            unit="per shard",
            label="Virtual nodes",
            help="Points per shard on the consistent-hash ring: more points, "
            "more even shares.",
        ),
        Param(
            "zipf_s",
            "float",
            0.9,
            0.0,
            2.5,
            step=0.05,
            label="Popularity skew",
            help="Zipf skew of key popularity: 0 is uniform.",
        ),
        Param(
            "request_rate",
            "float",
            2_000.0,
            1.0,
            100_000.0,
            unit="requests/s",
            step=100,
            label="Request rate",
            help="Average requests per second, arriving at random (Poisson).",
        ),
        Param(
            "related",
            "int",
            0,
            0,
            MAX_RELATED,
            unit="rows",
            label="Related rows per request",
            help="Other rows each request reads with its key (a user's orders, "
            "her friends' names); 0 reads the key alone.",
        ),
        Param(
            "related_layout",
            "choice",
            "spread",
            choices=LAYOUTS,
            label="Related rows live",
            help="spread: each related row has its own key and lives wherever the "
            "strategy puts it (normalised tables: a JOIN visits every shard holding "
            "one); together: they are stored with the key (copied into one record, "
            "or tables sharded by the same key), so one shard answers.",
        ),
    )
    commands: ClassVar[tuple[Command, ...]] = (
        Command(
            "add_shard",
            "Add shard",
            "Add a shard; the strategy decides which keys move to it.",
        ),
        Command(
            "remove_shard",
            "Remove shard",
            "Remove a shard; its keys move to the others.",
            args=(
                Param(
                    "shard",
                    "int",
                    -1,
                    -1,
                    MAX_SHARDS - 1,
                    label="Shard",
                    unset="the newest",
                    help="Number of the shard to remove; -1 the newest.",
                ),
            ),
        ),
        Command(
            "hot_key",
            "Hot key",
            "One key gets a burst: a share of all requests for some seconds.",
            args=(
                Param(
                    "key",
                    "int",
                    0,
                    0,
                    99_999,
                    label="Key",
                    help="The key that becomes hot.",
                ),
                Param(
                    "share",
                    "float",
                    0.5,
                    0.01,
                    1.0,
                    label="Share",
                    help="Share of all requests that go to the hot key.",
                ),
                Param(
                    "seconds",
                    "float",
                    10.0,
                    0.25,
                    600.0,
                    unit="s",
                    label="Duration",
                    help="How long the burst lasts.",
                ),
            ),
        ),
    )
    event_types = (
        "shard.load",
        "shard.rebalance",
        "shard.hot_key",
        "shard.hot_key_end",
    )
    narration = {
        "shard.rebalance": (
            "Rebalanced onto {shards#shard}: {moved_keys} keys moved "
            "({moved_fraction%})"
        ),
        "shard.hot_key": "Key {key} is hot: {share%} of requests go to shard {shard}",
        "shard.hot_key_end": "Key {key} has cooled down",
    }
    metric_specs: ClassVar[tuple[Metric, ...]] = (
        Metric("requests", "Requests", "requests"),
        Metric("requests_per_s", "Request rate", "requests/s"),
        Metric("shards", "Shards", "shards"),
        Metric(
            "moved_fraction",
            "Keys moved at the last resize",
            help="Share of all keys whose shard changed at the last resize.",
        ),
        Metric("moved_keys", "Keys moved at the last resize", "keys"),
        Metric(
            "moved_traffic_fraction",
            "Traffic moved at the last resize",
            help="Share of requests (by popularity) whose shard changed.",
        ),
        Metric(
            "load_imbalance",
            "Load imbalance",
            help="Busiest shard's requests over the mean, since the last "
            "resize (1 is perfectly even).",
        ),
        Metric(
            "max_shard_share",
            "Busiest shard's share",
            help="Share of requests served by the busiest shard since the last resize.",
        ),
        Metric(
            "key_imbalance",
            "Key imbalance",
            help="Most keys on one shard over the mean.",
        ),
        Metric("shard_names", "Shards", summary=False),
        Metric("keys_per_shard", "Keys per shard", "keys", summary=False),
        Metric(
            "load_per_shard", "Load per shard (last 3 s)", "queries/s", summary=False
        ),
        Metric("load_imbalance_recent", "Load imbalance (last 3 s)", summary=False),
        Metric(
            "max_shard_share_recent", "Busiest shard's share (last 3 s)", summary=False
        ),
        Metric("hot_key", "Hot key", summary=False, unset="none"),
        Metric(
            "shards_per_request",
            "Shards each request reads",
            "shards",
            help="Mean number of shards a request and its related rows reach, "
            "since the layout or the shards last changed.",
        ),
        Metric(
            "cross_shard_share",
            "Cross-shard requests",
            help="Share of requests that need more than one shard.",
        ),
    )
    theory_models = {
        "moved_fraction": "the share a resize moves: hash modulo, hash ring "
        "(Karger et al. 1997) or range split",
        "shards_per_request": "related rows on uniformly drawn keys: "
        "n - (n - 1)(1 - 1/n)^k on n even shards",
        "cross_shard_share": "related rows on uniformly drawn keys: "
        "1 - (1/n)^k on n even shards",
    }
    derived = ("_cdf", "_hash", "_owner", "_key_counts")

    # Topology --------------------------------------------------------------

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A snapshot from before re-routes were recorded carries on with none.
        for name, value in (("resized", None), ("resized_t", -1.0)):
            state.setdefault(name, value)
        for name in ("spread_requests", "spread_shards", "spread_cross"):
            state.setdefault(name, 0)
        for param in type(self).params:
            state["p"].setdefault(param.name, param.default)
        state.setdefault("moved_from", {})
        state.setdefault("moved_to", {})
        super().__setstate__(state)

    def rebuild(self) -> None:
        self._cdf = zipf_cdf(self.p["keys"], self.p["zipf_s"])
        keys = self.p["keys"]
        hashes: array | None = getattr(self, "_hash", None)
        if hashes is None or len(hashes) != keys:
            hashes = key_hashes(keys)
        self._hash = hashes
        if hasattr(self, "live"):
            self._set_owner(self._assign(self.p["strategy"], self.p["vnodes"]))

    def _set_owner(self, owner: array) -> None:
        self._owner = owner
        counts = [0] * MAX_SHARDS
        for sid in owner:
            counts[sid] += 1
        self._key_counts = counts

    def _ring(self, vnodes: int) -> tuple[list[int], list[int]]:
        salt = mix64(self.seed & MASK64)
        points = sorted(
            (mix64(salt ^ (sid << 20 | v)), sid)
            for sid in self.live
            for v in range(vnodes)
        )
        return [h for h, _ in points], [sid for _, sid in points]

    def _assign(self, strategy: str, vnodes: int) -> array:
        """Return the shard number of every key under the current topology."""
        keys = self.p["keys"]
        hashes = self._hash
        if strategy == "modulo":
            live = self.live
            n = len(live)
            return array("B", [live[h % n] for h in hashes])
        if strategy == "range":
            owner = array("B", bytes(keys))
            starts = [s for s, _ in self.bounds] + [1.0]
            for i, (_, sid) in enumerate(self.bounds):
                # key k lives in the range holding (k + 0.5) / keys
                lo = max(0, int(-(-(starts[i] * keys - 0.5) // 1)))
                hi = min(keys, int(-(-(starts[i + 1] * keys - 0.5) // 1)))
                owner[lo:hi] = array("B", [sid]) * max(0, hi - lo)
            return owner
        ring, ids = self._ring(vnodes)
        size = len(ring)
        out = array("B", bytes(keys))
        for k, h in enumerate(hashes):
            i = bisect_left(ring, h)
            out[k] = ids[i if i < size else 0]
        return out

    def setup(self) -> None:
        n = self.p["shards"]
        self.live: list[int] = list(range(n))
        self.bounds: list[tuple[float, int]] = [(i / n, i) for i in range(n)]
        self._set_owner(self._assign(self.p["strategy"], self.p["vnodes"]))
        self.next_request = self.rng.expovariate(self.p["request_rate"])
        self.hot: tuple[int, float, float] | None = None
        self.window = Window(span=3.0)
        self.moved_fraction = 0.0
        self.moved_keys = 0
        self.moved_traffic = 0.0
        self.resized: Resize | None = None
        self.resized_t = -1.0
        self.moved_from: dict[str, int] = {}
        self.moved_to: dict[str, int] = {}
        self.reset_stats()

    def reset_stats(self) -> None:
        self.since = self.now
        self.requests = 0
        self.load = [0] * MAX_SHARDS
        self._reset_spread()

    def _reset_spread(self) -> None:
        # requests and shards reached since the layout or the shards last changed
        self.spread_requests = 0
        self.spread_shards = 0
        self.spread_cross = 0

    def _topology(self) -> Topology:
        return tuple(self.live), tuple(self.bounds)

    def _rebalance(
        self,
        strategy: str,
        vnodes: int,
        change: dict[str, Any],
        before_topology: Topology | None = None,
    ) -> Event:
        """Re-route every key under the new topology and record how many moved.

        ``before_topology`` (shards and ranges before a resize) makes the move a
        resize, which theory predicts; without it a setting changed.
        """
        before = self._owner
        after = self._assign(strategy, vnodes)
        moved = 0
        traffic = 0.0
        cdf = self._cdf
        previous = 0.0
        moved_from = [0] * MAX_SHARDS
        moved_to = [0] * MAX_SHARDS
        for k, (a, b) in enumerate(zip(before, after)):
            if a != b:
                moved += 1
                traffic += cdf[k] - previous
                moved_from[a] += 1
                moved_to[b] += 1
            previous = cdf[k]
        self._set_owner(after)
        self.moved_from = {str(s): n for s, n in enumerate(moved_from) if n}
        self.moved_to = {str(s): n for s, n in enumerate(moved_to) if n}
        self.resized_t = self.now
        if before_topology is None:
            self.resized = ("setting", next(iter(change), "strategy"))
        else:
            self.resized = (strategy, *before_topology, *self._topology())
        keys = len(after)
        self.moved_keys = moved
        self.moved_fraction = moved / keys
        self.moved_traffic = traffic
        # shard loads describe the current layout: they restart at every resize
        self.load = [0] * MAX_SHARDS
        self.since = self.now
        self._reset_spread()
        return {
            "type": "shard.rebalance",
            "t": self.now,
            "strategy": strategy,
            "shards": len(self.live),
            "moved_keys": moved,
            "moved_fraction": self.moved_fraction,
            **change,
        }

    def _add(self) -> int:
        sid = min(set(range(MAX_SHARDS)) - set(self.live))
        self.live.append(sid)
        # range: the newcomer takes the upper half of the widest range
        ends = [s for s, _ in self.bounds[1:]] + [1.0]
        widths = [e - s for (s, _), e in zip(self.bounds, ends)]
        i = widths.index(max(widths))
        start = self.bounds[i][0] + widths[i] / 2
        self.bounds.insert(i + 1, (start, sid))
        self.p["shards"] = len(self.live)
        return sid

    def _remove(self, sid: int) -> None:
        self.live.remove(sid)
        # range: the removed range joins its lower neighbour (the next one if first)
        i = next(j for j, (_, owner) in enumerate(self.bounds) if owner == sid)
        if i == 0:
            self.bounds[1] = (0.0, self.bounds[1][1])
        del self.bounds[i]
        self.p["shards"] = len(self.live)

    # Commands --------------------------------------------------------------

    def on_add_shard(self) -> list[Event]:
        if len(self.live) >= MAX_SHARDS:
            raise CommandError(
                "add_shard", f"at most {MAX_SHARDS} shards; there are {len(self.live)}"
            )
        before = self._topology()
        sid = self._add()
        return [
            self._rebalance(
                self.p["strategy"], self.p["vnodes"], {"added": sid}, before
            )
        ]

    def on_remove_shard(self, shard: int) -> list[Event]:
        live = ", ".join(str(s) for s in sorted(self.live))
        if len(self.live) <= 1:
            raise CommandError("remove_shard.shard", "cannot remove the last shard")
        if shard == -1:
            shard = self.live[-1]
        if shard not in self.live:
            raise CommandError(
                "remove_shard.shard",
                f"remove_shard: no shard {shard}; "
                f"shards: {live} (or -1 for the newest)",
            )
        before = self._topology()
        self._remove(shard)
        return [
            self._rebalance(
                self.p["strategy"], self.p["vnodes"], {"removed": shard}, before
            )
        ]

    def on_hot_key(self, key: int, share: float, seconds: float) -> list[Event]:
        if key >= self.p["keys"]:
            raise CommandError(
                "hot_key.key",
                f"hot_key: key must be from 0 to {self.p['keys'] - 1}; got {key}",
            )
        until = self.now + seconds
        self.hot = (key, share, until)
        return [
            {
                "type": "shard.hot_key",
                "t": self.now,
                "key": key,
                "share": share,
                "until": until,
                "shard": self._owner[key],
            }
        ]

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        if name == "shards":
            wanted = self.p["shards"]
            self.p["shards"] = len(self.live)
            # rebuild() routed with the old topology: resize it, then re-route
            change: dict[str, Any] = {}
            before = self._topology()
            while len(self.live) < wanted:
                change.setdefault("added", []).append(self._add())
            while len(self.live) > wanted:
                change.setdefault("removed", []).append(self.live[-1])
                self._remove(self.live[-1])
            return [
                self._rebalance(self.p["strategy"], self.p["vnodes"], change, before)
            ]
        if name in ("strategy", "vnodes"):
            # rebuild() already routed with the new setting; compare with the old
            strategy = old if name == "strategy" else self.p["strategy"]
            vnodes = old if name == "vnodes" else self.p["vnodes"]
            self._owner = self._assign(strategy, vnodes)
            return [
                self._rebalance(
                    self.p["strategy"], self.p["vnodes"], {name: self.p[name]}
                )
            ]
        if name == "request_rate":
            self.next_request = self.now + self.rng.expovariate(self.p["request_rate"])
        if name == "keys" and self.hot and self.hot[0] >= self.p["keys"]:
            self.hot = None
        if name in ("related", "related_layout"):
            # the shards' query counts now mean something else: count afresh
            self.load = [0] * MAX_SHARDS
            self.since = self.now
            self._reset_spread()
        return None

    # Running ---------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        if self.p["related"] and self.p["related_layout"] == "spread":
            return self._run_spread(end)
        return self._run_by_key(end)

    def _run_by_key(self, end: float) -> list[Event]:
        rand = self.rng.random
        expo = self.rng.expovariate
        rate = self.p["request_rate"]
        cdf = self._cdf
        owner = self._owner
        last = len(owner) - 1
        counts = [0] * MAX_SHARDS
        t = self.next_request
        events: list[Event] = []
        hot = self.hot
        if hot is not None:
            key, share, until = hot
            stop = min(end, until)
            while t <= stop:
                if rand() < share:
                    counts[owner[key]] += 1
                else:
                    k = bisect_right(cdf, rand())
                    counts[owner[k if k < last else last]] += 1
                t += expo(rate)
            if until <= end:
                self.hot = None
                events.append({"type": "shard.hot_key_end", "t": until, "key": key})
        while t <= end:
            k = bisect_right(cdf, rand())
            counts[owner[k if k < last else last]] += 1
            t += expo(rate)
        self.next_request = t
        total = sum(counts)
        self.spread_requests += total
        self.spread_shards += total
        return self._count(counts, total, events)

    def _count(
        self, counts: list[int], requests: int, events: list[Event]
    ) -> list[Event]:
        """Add one slice's queries per shard (``counts``) and requests to the totals."""
        self.processed += requests
        self.requests += requests
        load = self.load
        for sid in self.live:
            load[sid] += counts[sid]
        if requests:
            self.window.add(self.now, **{f"s{sid}": counts[sid] for sid in self.live})
            events.append({"type": "shard.load", "count": requests})
        return events

    def _run_spread(self, end: float) -> list[Event]:
        """Route requests that also read ``related`` rows placed under their own keys.

        Each related row is a key drawn uniformly (a user's orders have ids of
        their own); every shard holding the key or a related row gets one query.
        """
        rand = self.rng.random
        expo = self.rng.expovariate
        rate = self.p["request_rate"]
        related = self.p["related"]
        cdf = self._cdf
        owner = self._owner
        keys = len(owner)
        last = keys - 1
        counts = [0] * MAX_SHARDS
        t = self.next_request
        events: list[Event] = []
        hot = self.hot
        requests = shards = cross = 0
        while t <= end:
            if hot is not None and t > hot[2]:
                events.append({"type": "shard.hot_key_end", "t": hot[2], "key": hot[0]})
                hot = self.hot = None
            if hot is not None and rand() < hot[1]:
                k = hot[0]
            else:
                k = bisect_right(cdf, rand())
                k = k if k < last else last
            home = owner[k]
            reached = {home}
            for _ in range(related):
                reached.add(owner[int(rand() * keys)])
            for sid in reached:
                counts[sid] += 1
            requests += 1
            shards += len(reached)
            cross += len(reached) > 1
            t += expo(rate)
        if hot is not None and hot[2] <= end:
            events.append({"type": "shard.hot_key_end", "t": hot[2], "key": hot[0]})
            self.hot = None
        self.next_request = t
        self.spread_requests += requests
        self.spread_shards += shards
        self.spread_cross += cross
        return self._count(counts, requests, events)

    def metrics(self) -> dict[str, Any]:
        live = self.live
        n = len(live)
        loads = [self.load[sid] for sid in live]
        served = sum(loads)
        mean = served / n
        keys_per_shard = [self._key_counts[sid] for sid in live]
        w, now = self.window, self.now
        span = w.seconds(now)
        recent = [w.total(f"s{sid}", now) / span for sid in live]
        recent_mean = sum(recent) / n
        elapsed = max(now - self.since, 1e-9)
        return {
            "requests": self.requests,
            "requests_per_s": self.spread_requests / elapsed,
            "shards": n,
            "moved_fraction": self.moved_fraction,
            "moved_keys": self.moved_keys,
            "moved_traffic_fraction": self.moved_traffic,
            "load_imbalance": max(loads) / mean if served else 0.0,
            "max_shard_share": max(loads) / served if served else 0.0,
            "key_imbalance": max(keys_per_shard) / (len(self._owner) / n),
            "shard_names": [f"shard {sid}" for sid in live],
            "keys_per_shard": keys_per_shard,
            "load_per_shard": recent,
            "load_imbalance_recent": max(recent) / recent_mean if recent_mean else 0.0,
            "max_shard_share_recent": max(recent) / (recent_mean * n)
            if recent_mean
            else 0.0,
            "hot_key": self.hot[0] if self.hot else -1,
            "shards_per_request": self.spread_shards / self.spread_requests
            if self.spread_requests
            else 0.0,
            "cross_shard_share": self.spread_cross / self.spread_requests
            if self.spread_requests
            else 0.0,
        }

    def picture(self) -> dict[str, Any]:
        """Return the shards in routing order (ranges: in key order), where the last
        re-route moved keys from and to, and the shard of the hot key."""
        strategy = self.p["strategy"]
        picture: dict[str, Any] = {
            "strategy": strategy,
            "order": [sid for _, sid in self.bounds]
            if strategy == "range"
            else list(self.live),
            "moved_at": self.resized_t,
            "hot_shard": self._owner[self.hot[0]] if self.hot else -1,
        }
        # Only a recent move is drawn: older frames leave the counts out.
        if self.resized_t >= 0 and self.now - self.resized_t <= PICTURE_MOVED_S:
            picture["moved_from"] = self.moved_from
            picture["moved_to"] = self.moved_to
        return picture

    def theory_key(self) -> tuple[Any, ...]:
        related = self.p["related"]
        if self.p["related_layout"] == "together":
            related = -related  # stored with the key: one shard, whatever it holds
        spread: tuple[Any, ...] = ()
        if related > 0:
            # the prediction reads the shares of keys and traffic of each shard
            spread = (
                self.p["keys"],
                self.p["zipf_s"],
                self.p["strategy"],
                self.p["vnodes"],
                self.seed,
                self._topology(),
            )
        return (self.resized, related, spread)

    def compute_theory(self) -> TheoryFigures:
        return {**self._moved_theory(), **self._spread_theory()}

    def _spread_theory(self) -> dict[str, float | str | tuple[float, str]]:
        if not self.p["related"]:
            return {}  # a lookup by key alone: one shard, nothing to predict
        related = self.p["related"] if self.p["related_layout"] == "spread" else 0
        if not related:
            return {"shards_per_request": 1.0, "cross_shard_share": 0.0}
        keys = len(self._owner)
        key_shares = [self._key_counts[sid] / keys for sid in self.live]
        traffic = [0.0] * MAX_SHARDS
        previous = 0.0
        for k, value in enumerate(self._cdf):
            traffic[self._owner[k]] += value - previous
            previous = value
        traffic_shares = [traffic[sid] for sid in self.live]
        return {
            "shards_per_request": shards_touched(related, key_shares, traffic_shares),
            "cross_shard_share": cross_shard_share(related, key_shares, traffic_shares),
        }

    def _moved_theory(self) -> dict[str, float | str | tuple[float, str]]:
        resized = self.resized
        if resized is None:
            return {
                "moved_fraction": "no shard has been added or removed yet: "
                "the prediction is for a resize"
            }
        if resized[0] == "setting":
            return {
                "moved_fraction": f"the last re-route changed the {resized[1]}, "
                "not the number of shards: the prediction is for a resize"
            }
        strategy, old, old_bounds, new, new_bounds = resized
        if strategy == "modulo":
            return {
                "moved_fraction": (
                    modulo_remap_fraction(old, new),
                    "hash modulo: 1 - min(n, m) / lcm(n, m) for n to m shards",
                )
            }
        if strategy == "consistent":
            return {
                "moved_fraction": (
                    consistent_moved_fraction(len(old), len(new)),
                    "a hash ring: |m - n| / max(n, m) (Karger et al. 1997)",
                )
            }
        return {
            "moved_fraction": (
                range_moved_fraction(old_bounds, new_bounds),
                "key ranges: the share of the key range that changed shard",
            )
        }
