"""Cache-aside in front of a slower database, with LRU eviction."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from .base import Command, Engine, Event, Metric, Param, Window


@lru_cache(maxsize=8)
def zipf_cdf(keys: int, s: float) -> array:
    """Return the cumulative Zipf(s) popularity of keys 0..keys-1 (shared, read-only)."""
    cdf = array("d", bytes(8 * keys))
    total = 0.0
    for i in range(keys):
        total += 1.0 / (i + 1) ** s
        cdf[i] = total
    for i in range(keys):
        cdf[i] /= total
    cdf[keys - 1] = 1.0
    return cdf


class CacheEngine(Engine):
    kind = "cache"
    title = "Cache in front of a database"
    description = (
        "Reads look in the cache first; a miss goes to the database and the answer "
        "is stored, evicting the least recently used entry when the cache is full."
    )
    params = (
        Param("keys", "int", 10_000, 10, 1_000_000, unit="keys",
              help="How many distinct objects can be read.", label="Catalogue size"),
        Param("zipf_s", "float", 0.9, 0.0, 2.5, step=0.05,
              help="Skew of popularity: 0 is uniform, higher means a few keys get most reads.",
              label="Popularity skew (Zipf s)"),
        Param("read_rate", "float", 500.0, 1.0, 20_000.0, unit="reads/s", step=10,
              help="Average reads per second arriving at random (Poisson).", label="Read rate"),
        Param("capacity", "int", 1_000, 1, 1_000_000, unit="items",
              help="How many objects the cache holds before it evicts.", label="Cache capacity"),
        Param("cache_latency_ms", "float", 0.5, 0.01, 100.0, unit="ms", step=0.1,
              help="Time to look a key up in the cache.", label="Cache latency"),
        Param("db_latency_ms", "float", 20.0, 0.1, 10_000.0, unit="ms", step=1,
              help="Time for the database to answer a read.", label="Database latency"),
    )
    commands = (
        Command("flush", "Flush", "Empty the cache; it stays up."),
        Command("crash", "Crash cache", "The cache goes down: every read goes to the database."),
        Command("restart", "Restart cache", "Bring the cache back up, empty."),
        Command(
            "resize",
            "Resize",
            "Change the capacity; the least recently used entries go first.",
            args=(Param("capacity", "int", 1_000, 1, 1_000_000, unit="items", help="New capacity."),),
        ),
    )
    event_types = (
        "cache.hit", "cache.miss", "cache.evict",
        "cache.flush", "cache.crash", "cache.restart", "cache.resize",
    )
    metric_specs = (
        Metric("hit_ratio", "Hit ratio", help="Share of reads served from the cache."),
        Metric("hits", "Hits", "reads"),
        Metric("misses", "Misses", "reads", help="Reads the cache could not serve."),
        Metric("evictions", "Evictions", "entries"),
        Metric("mean_latency_ms", "Mean latency", "ms"),
        Metric("db_reads_per_s", "Database reads", "reads/s"),
        Metric("hit_ratio_recent", "Hit ratio (last 3 s)", summary=False),
        Metric("latency_ms_recent", "Latency (last 3 s)", "ms", summary=False),
        Metric("hits_per_s_recent", "Hits (last 3 s)", "reads/s", summary=False),
        Metric("misses_per_s_recent", "Misses (last 3 s)", "reads/s", summary=False),
        Metric("db_reads_per_s_recent", "Database reads (last 3 s)", "reads/s", summary=False),
        Metric("occupancy", "Entries cached", "items", summary=False),
        Metric("cache_up", "Cache up", summary=False),
    )
    derived = ("_cdf",)

    def rebuild(self) -> None:
        self._cdf = zipf_cdf(self.p["keys"], self.p["zipf_s"])

    def setup(self) -> None:
        self.store: OrderedDict[int, None] = OrderedDict()
        self.up = True
        self.next_read = self.rng.expovariate(self.p["read_rate"])
        self.window = Window(span=3.0)
        self.reset_stats()

    def reset_stats(self) -> None:
        self.since = self.now
        self.hits = self.misses = self.evictions = self.db_reads = 0
        self.latency_sum = 0.0

    def run_until(self, end: float) -> list[Event]:
        rand = self.rng.random
        expo = self.rng.expovariate
        rate = self.p["read_rate"]
        cdf = self._cdf
        last = self.p["keys"] - 1
        store = self.store
        capacity = self.p["capacity"]
        hits = misses = evicted = 0
        t = self.next_read
        if self.up:
            while t <= end:
                key = bisect_right(cdf, rand())
                if key > last:
                    key = last
                if key in store:
                    store.move_to_end(key)
                    hits += 1
                else:
                    misses += 1
                    store[key] = None
                    if len(store) > capacity:
                        store.popitem(last=False)
                        evicted += 1
                t += expo(rate)
            bypassed = 0
        else:
            bypassed = 0
            while t <= end:
                rand()  # the key drawn does not matter, but keeps one draw per read
                bypassed += 1
                t += expo(rate)
        self.next_read = t
        cache_ms = self.p["cache_latency_ms"]
        db_ms = self.p["db_latency_ms"]
        latency = hits * cache_ms + misses * (cache_ms + db_ms) + bypassed * db_ms
        self.processed += hits + misses + bypassed
        self.hits += hits
        self.misses += misses + bypassed
        self.evictions += evicted
        self.db_reads += misses + bypassed
        self.latency_sum += latency
        self.window.add(self.now, hits=hits, misses=misses + bypassed, latency=latency)
        events: list[Event] = []
        if hits:
            events.append({"type": "cache.hit", "count": hits})
        if misses or bypassed:
            events.append({"type": "cache.miss", "count": misses + bypassed})
        if evicted:
            events.append({"type": "cache.evict", "count": evicted})
        return events

    def metrics(self) -> dict[str, Any]:
        reads = self.hits + self.misses
        elapsed = max(self.now - self.since, 1e-9)
        w, now = self.window, self.now
        recent_hits, recent_misses = w.total("hits", now), w.total("misses", now)
        recent_reads = recent_hits + recent_misses
        span = w.seconds(now)
        return {
            "hit_ratio": self.hits / reads if reads else 0.0,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "mean_latency_ms": self.latency_sum / reads if reads else 0.0,
            "db_reads_per_s": self.db_reads / elapsed,
            "hit_ratio_recent": recent_hits / recent_reads if recent_reads else 0.0,
            "latency_ms_recent": w.total("latency", now) / recent_reads if recent_reads else 0.0,
            "hits_per_s_recent": recent_hits / span,
            "misses_per_s_recent": recent_misses / span,
            "db_reads_per_s_recent": recent_misses / span,
            "occupancy": len(self.store),
            "cache_up": 1 if self.up else 0,
        }

    def _shrink(self, capacity: int) -> int:
        evicted = 0
        while len(self.store) > capacity:
            self.store.popitem(last=False)
            evicted += 1
        self.evictions += evicted
        return evicted

    def on_flush(self) -> list[Event]:
        dropped = len(self.store)
        self.store.clear()
        return [{"type": "cache.flush", "t": self.now, "dropped": dropped}]

    def on_crash(self) -> list[Event]:
        dropped = len(self.store)
        self.store.clear()
        self.up = False
        return [{"type": "cache.crash", "t": self.now, "dropped": dropped}]

    def on_restart(self) -> list[Event]:
        was_up = self.up
        self.up = True
        return [{"type": "cache.restart", "t": self.now, "was_up": was_up}]

    def on_resize(self, capacity: int) -> list[Event]:
        self.p["capacity"] = capacity
        evicted = self._shrink(capacity)
        return [{"type": "cache.resize", "t": self.now, "capacity": capacity, "evicted": evicted}]

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        if name == "capacity":
            evicted = self._shrink(self.p["capacity"])
            return [{"type": "cache.resize", "t": self.now, "capacity": self.p["capacity"],
                     "evicted": evicted}]
        if name == "keys":
            for key in [k for k in self.store if k >= self.p["keys"]]:
                del self.store[key]
        return None
