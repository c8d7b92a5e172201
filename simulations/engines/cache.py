"""A cache in front of a slower database: eviction, expiry, writes and failures.

Reads look in the cache first; a miss reads the database and stores the answer,
evicting an entry by the chosen policy when the cache is full. Writes change
objects in the database and, depending on the write policy, drop, update or
buffer the cached copy. In query mode an entry caches the answer of a query that
reads several rows, keyed by a hash of its text: a writer cannot tell which
entries hold the row it changed, so those entries are served stale until they
expire.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from heapq import heapify, heappop, heappush
from typing import Any

from ..sampling import zipf_cdf
from ..theory.caching import (
    zipf_che_hit_ratio,
    zipf_fifo_hit_ratio,
    zipf_lfu_hit_ratio,
    zipf_ttl_hit_ratio,
)
from .base import (
    Command,
    CommandError,
    Engine,
    Event,
    Metric,
    Param,
    ParamError,
    TheoryFigures,
    Window,
)

INF = float("inf")
POLICIES = ("lru", "lfu", "fifo", "random")
WRITE_POLICIES = ("invalidate", "write_through", "write_behind")


class CacheEngine(Engine):
    kind = "cache"
    title = "Cache in front of a database"
    description = (
        "Reads look in the cache first; a miss goes to the database and the answer "
        "is stored, evicting an entry by the chosen policy when the cache is full. "
        "Writes drop, update or buffer the cached copy; entries can expire; the "
        "cache server can crash and come back empty (memcached) or warm (redis)."
    )
    params = (
        Param(
            "keys",
            "int",
            10_000,
            10,
            1_000_000,
            unit="keys",
            help="How many distinct objects (or queries, in query mode) can be read.",
            label="Catalogue size",
        ),
        Param(
            "zipf_s",
            "float",
            0.9,
            0.0,
            2.5,
            step=0.05,
            help="Skew of popularity: 0 is uniform, higher means a few keys get most reads.",
            label="Popularity skew (Zipf s)",
        ),
        Param(
            "read_rate",
            "float",
            500.0,
            1.0,
            20_000.0,
            unit="reads/s",
            step=10,
            help="Average reads per second arriving at random (Poisson).",
            label="Read rate",
        ),
        Param(
            "capacity",
            "int",
            1_000,
            1,
            1_000_000,
            unit="items",
            help="How many objects the cache holds before it evicts.",
            label="Cache capacity",
        ),
        Param(
            "cache_latency_ms",
            "float",
            0.5,
            0.01,
            100.0,
            unit="ms",
            step=0.1,
            help="Time to look a key up in the cache.",
            label="Cache latency",
        ),
        Param(
            "db_latency_ms",
            "float",
            20.0,
            0.1,
            10_000.0,
            unit="ms",
            step=1,
            help="Time for the database to answer a read.",
            label="Database latency",
        ),
        Param(
            "policy",
            "choice",
            "lru",
            choices=POLICIES,
            help=(
                "Which entry goes when the cache is full: the least recently used, the "
                "least frequently used (read counts are kept for every object, cached "
                "or not), the oldest (first in, first out), or one at random."
            ),
            label="Eviction policy",
        ),
        Param(
            "ttl_s",
            "float",
            0.0,
            0.0,
            86_400.0,
            unit="s",
            step=1,
            help=(
                "An entry expires this long after it was stored; reading an expired "
                "entry is a miss. 0: entries never expire."
            ),
            label="Time to live",
        ),
        Param(
            "write_rate",
            "float",
            0.0,
            0.0,
            20_000.0,
            unit="writes/s",
            step=10,
            help=(
                "Average writes per second (Poisson), to objects (rows, in query "
                "mode) as popular as the reads."
            ),
            label="Write rate",
        ),
        Param(
            "key_mode",
            "choice",
            "object",
            choices=("object", "query"),
            help=(
                "object: an entry holds one object, so a write knows the one entry "
                "to drop or update. query: an entry holds the answer of a query that "
                "reads several rows, keyed by a hash of its text; a writer cannot "
                "know those keys, so the entries go stale until they expire."
            ),
            label="Cache key",
        ),
        Param(
            "rows_per_query",
            "int",
            5,
            1,
            20,
            unit="rows",
            help="Query mode: query q reads rows q to q + this - 1.",
            label="Rows per query",
        ),
        Param(
            "write_policy",
            "choice",
            "invalidate",
            choices=WRITE_POLICIES,
            help=(
                "invalidate: write the database, delete the cached copy (cache-aside). "
                "write_through: write the database and the cache. write_behind: write "
                "the cache only and flush dirty entries to the database every flush "
                "interval; a crash loses what was not flushed. Query mode can only "
                "invalidate or write through (and can do neither to its entries)."
            ),
            label="Write policy",
        ),
        Param(
            "flush_interval_s",
            "float",
            1.0,
            0.25,
            60.0,
            unit="s",
            step=0.25,
            help="Write-behind: how often dirty entries are written to the database.",
            label="Write-behind flush interval",
        ),
        Param(
            "backend",
            "choice",
            "memcached",
            choices=("memcached", "redis"),
            help=(
                "memcached keeps entries in memory only: a restart comes back empty. "
                "redis persists them: a restart comes back with the entries it had "
                "(except unflushed write-behind ones)."
            ),
            label="Cache server",
        ),
    )
    commands = (
        Command(
            "flush",
            "Flush",
            "Empty the cache (dirty entries are written back first); it stays up.",
        ),
        Command(
            "crash",
            "Crash cache",
            "The cache goes down: every read and write goes to the database. Unflushed "
            "write-behind writes are lost.",
        ),
        Command(
            "restart",
            "Restart cache",
            "Bring the cache back up: empty (memcached) or with its entries (redis).",
        ),
        Command(
            "resize",
            "Resize",
            "Change the capacity; entries are evicted by the policy until they fit.",
            args=(
                Param(
                    "capacity",
                    "int",
                    1_000,
                    1,
                    1_000_000,
                    unit="items",
                    help="New capacity.",
                ),
            ),
        ),
        Command(
            "write_burst",
            "Write burst",
            "Extra writes, arriving at random over a few seconds, on top of the write rate.",
            args=(
                Param(
                    "writes",
                    "int",
                    2_000,
                    1,
                    100_000,
                    unit="writes",
                    help="How many extra writes.",
                ),
                Param(
                    "duration_s",
                    "float",
                    2.0,
                    0.25,
                    60.0,
                    unit="s",
                    help="Over how long they arrive.",
                ),
            ),
        ),
        Command(
            "warm",
            "Warm the cache",
            "A background job pre-loads the hottest objects, hottest first, reading "
            "each from the database.",
            args=(
                Param(
                    "count",
                    "int",
                    0,
                    0,
                    1_000_000,
                    unit="objects",
                    help="How many of the hottest objects to load (at most the capacity); "
                    "0 loads as many as the cache holds.",
                ),
                Param(
                    "rate",
                    "float",
                    2_000.0,
                    10.0,
                    100_000.0,
                    unit="loads/s",
                    help="How fast the job loads them.",
                ),
            ),
        ),
    )
    event_types = (
        "cache.hit",
        "cache.miss",
        "cache.evict",
        "cache.flush",
        "cache.crash",
        "cache.restart",
        "cache.resize",
        "cache.stale",
        "cache.expire",
        "cache.write",
        "cache.write_back",
        "cache.lost_write",
        "cache.write_burst",
        "cache.warm",
        "cache.warm_done",
    )
    narration = {
        "cache.flush": (
            "The cache was flushed: {dropped#entry|entries} dropped, "
            "{written_back#write} saved first"
        ),
        "cache.crash": "The cache crashed: {dropped#entry|entries} lost, {kept} kept",
        "cache.restart": (
            "The cache {was_up?restarted|came back up} with {entries#entry|entries}"
        ),
        "cache.resize": (
            "The cache now holds {capacity#entry|entries}; {evicted} evicted"
        ),
        "cache.lost_write": (
            "{writes#write} not yet saved were lost, on {objects#object}"
        ),
        "cache.write_burst": "A burst of {writes} writes over {duration_s} s",
        "cache.warm": "Warming the cache: {count#key} at {rate} a second",
        "cache.warm_done": "Warming finished: {loaded#key} loaded",
    }
    metric_specs = (
        Metric("hit_ratio", "Hit ratio", help="Share of reads served from the cache."),
        Metric("hits", "Hits", "reads"),
        Metric("misses", "Misses", "reads", help="Reads the cache could not serve."),
        Metric("evictions", "Evictions", "entries"),
        Metric("mean_latency_ms", "Mean latency", "ms"),
        Metric("db_reads_per_s", "Database reads", "reads/s"),
        Metric("writes", "Writes", "writes"),
        Metric(
            "stale_reads",
            "Stale reads",
            "reads",
            help="Hits that returned an entry older than a write to one of its rows.",
        ),
        Metric(
            "expirations",
            "Expired entries",
            "entries",
            help="Reads that found their entry expired.",
        ),
        Metric(
            "lost_writes",
            "Lost writes",
            "writes",
            help="Acknowledged write-behind writes that never reached the database.",
        ),
        Metric("db_writes_per_s", "Database writes", "writes/s"),
        Metric("hit_ratio_recent", "Hit ratio (last 3 s)", summary=False),
        Metric("latency_ms_recent", "Latency (last 3 s)", "ms", summary=False),
        Metric("hits_per_s_recent", "Hits (last 3 s)", "reads/s", summary=False),
        Metric("misses_per_s_recent", "Misses (last 3 s)", "reads/s", summary=False),
        Metric(
            "db_reads_per_s_recent",
            "Database reads (last 3 s)",
            "reads/s",
            summary=False,
        ),
        Metric("occupancy", "Entries cached", "items", summary=False),
        Metric("cache_up", "Cache up", summary=False),
        Metric(
            "stale_per_s_recent", "Stale reads (last 3 s)", "reads/s", summary=False
        ),
        Metric("writes_per_s_recent", "Writes (last 3 s)", "writes/s", summary=False),
        Metric(
            "db_writes_per_s_recent",
            "Database writes (last 3 s)",
            "writes/s",
            summary=False,
        ),
        Metric("dirty", "Unflushed writes", "objects", summary=False),
        Metric("warm_progress", "Warm-up job progress", summary=False),
    )
    derived = ("_cdf",)
    theory_models = {
        "hit_ratio": "Che (LRU), characteristic time (FIFO, random) or top keys' "
        "share (LFU), for independent Zipf reads",
        "mean_latency_ms": "cache latency + miss ratio × database latency",
        "db_reads_per_s": "read rate × miss ratio",
    }
    # Picture: keys shown one by one, cached or not, from the hottest to the coldest.
    PICTURE_KEYS = 24

    @classmethod
    def check_params(cls, values: dict[str, Any]) -> None:
        if values["key_mode"] == "query" and values["write_policy"] == "write_behind":
            raise ParamError(
                "write_policy",
                "write_policy must be one of invalidate, write_through when key_mode is "
                "query: write-behind needs an entry per object to hold the new value",
            )

    def rebuild(self) -> None:
        self._cdf = zipf_cdf(self.p["keys"], self.p["zipf_s"])

    def setup(self) -> None:
        # Entry -> the simulated time it was stored (for expiry). The order is the
        # recency order (lru) or the insertion order (fifo).
        self.store: OrderedDict[int, float] = OrderedDict()
        self.up = True
        self.next_read = self.rng.expovariate(self.p["read_rate"])
        self.window = Window(span=3.0)
        self.stale: set[int] = set()  # entries older than a write to one of their rows
        self.dirty: dict[
            int, int
        ] = {}  # write-behind: object -> writes not yet flushed
        # lfu: read counts of every object ever read, and a heap of (count, seq, key)
        # whose entry for a cached key is valid when heap_seq[key] == seq.
        self.counts: dict[int, int] = {}
        self.heap: list[tuple[int, int, int]] = []
        self.heap_seq: dict[int, int] = {}
        self.seq = 0
        # random: the cached keys in a list, so one can be picked in O(1)
        self.slots: list[int] = []
        self.slot_of: dict[int, int] = {}
        rate = self.p["write_rate"]
        self.next_write = self.rng.expovariate(rate) if rate > 0 else INF
        self.burst_rate = 0.0
        self.burst_end = 0.0
        self.next_burst = INF
        self.next_flush = self._first_flush()
        self.warm_next = INF
        self.warm_key = 0
        self.warm_total = 0
        self.warm_interval = 0.0
        self.warm_loaded = 0
        self.warm_progress = 0.0
        # Since the start (not reset): conservation of writes.
        self.write_backs = 0  # database writes made by flushing dirty entries
        self.flushed_writes = 0  # accepted writes those flushes carried
        self.reset_stats()

    def reset_stats(self) -> None:
        self.since = self.now
        self.hits = self.misses = self.evictions = self.db_reads = 0
        self.latency_sum = 0.0
        self.writes = self.db_writes = self.stale_reads = self.expirations = 0
        self.lost_writes = 0

    def _first_flush(self) -> float:
        if self.p["write_policy"] == "write_behind":
            return self.now + self.p["flush_interval_s"]
        return INF

    # Running ----------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        simple = (
            self.next_write == INF
            and self.next_burst == INF
            and self.next_flush == INF
            and self.warm_next == INF
        )
        if simple and not self.up:
            return self._run_down(end)
        if (
            simple
            and self.p["policy"] == "lru"
            and not self.p["ttl_s"]
            and not self.stale
        ):
            return self._run_lru(end)
        return self._run_general(end)

    def _run_lru(self, end: float) -> list[Event]:
        """Read-only LRU without expiry: the hot path, kept lean."""
        rand = self.rng.random
        expo = self.rng.expovariate
        rate = self.p["read_rate"]
        cdf = self._cdf
        last = self.p["keys"] - 1
        store = self.store
        capacity = self.p["capacity"]
        hits = misses = evicted = 0
        t = self.next_read
        while t <= end:
            key = bisect_right(cdf, rand())
            if key > last:
                key = last
            if key in store:
                store.move_to_end(key)
                hits += 1
            else:
                misses += 1
                store[key] = t
                if len(store) > capacity:
                    store.popitem(last=False)
                    evicted += 1
            t += expo(rate)
        self.next_read = t
        self.evictions += evicted
        return self._tally(hits, misses, 0, evicted)

    def _run_down(self, end: float) -> list[Event]:
        """The cache is down and nothing but reads happens: all go to the database."""
        rand = self.rng.random
        expo = self.rng.expovariate
        rate = self.p["read_rate"]
        bypassed = 0
        t = self.next_read
        while t <= end:
            rand()  # the key drawn does not matter, but keeps one draw per read
            bypassed += 1
            t += expo(rate)
        self.next_read = t
        return self._tally(0, 0, bypassed, 0)

    def _tally(
        self,
        hits: int,
        misses: int,
        bypassed: int,
        evicted: int,
        *,
        stale: int = 0,
        expired: int = 0,
        writes: int = 0,
        db_writes: int = 0,
        write_backs: int = 0,
        loads: int = 0,
        other: int = 0,
    ) -> list[Event]:
        """Add one slice's reads to the totals and the window; return its events."""
        cache_ms = self.p["cache_latency_ms"]
        db_ms = self.p["db_latency_ms"]
        latency = hits * cache_ms + misses * (cache_ms + db_ms) + bypassed * db_ms
        missed = misses + bypassed
        self.processed += hits + missed + other
        self.hits += hits
        self.misses += missed
        self.db_reads += missed  # the warm-up job counts its own ``loads``
        self.latency_sum += latency
        self.window.add(
            self.now,
            hits=hits,
            misses=missed,
            latency=latency,
            db_reads=missed + loads,
            stale=stale,
            writes=writes,
            db_writes=db_writes,
        )
        events: list[Event] = []
        if hits:
            events.append({"type": "cache.hit", "count": hits})
        if missed:
            events.append({"type": "cache.miss", "count": missed})
        if evicted:
            events.append({"type": "cache.evict", "count": evicted})
        if stale:
            events.append({"type": "cache.stale", "count": stale})
        if expired:
            events.append({"type": "cache.expire", "count": expired})
        if writes:
            events.append({"type": "cache.write", "count": writes})
        if write_backs:
            events.append({"type": "cache.write_back", "count": write_backs})
        return events

    def _run_general(self, end: float) -> list[Event]:
        """Reads, writes, flushes and the warm-up job, merged in time order."""
        rand = self.rng.random
        expo = self.rng.expovariate
        rate = self.p["read_rate"]
        cdf = self._cdf
        last = self.p["keys"] - 1
        store = self.store
        stale_set = self.stale
        ttl = self.p["ttl_s"]
        policy = self.p["policy"]
        lru, lfu = policy == "lru", policy == "lfu"
        counts = self.counts
        before = (
            self.evictions,
            self.writes,
            self.db_writes,
            self.write_backs,
            self.db_reads,
            self.expirations,
        )
        hits = misses = bypassed = stale = expired = other = 0
        events: list[Event] = []
        t = self.next_read
        due = min(self.next_write, self.next_burst, self.next_flush, self.warm_next)
        while True:
            if due < t:
                if due > end:
                    break
                events += self._background(due)
                other += 1
                due = min(
                    self.next_write, self.next_burst, self.next_flush, self.warm_next
                )
                continue
            if t > end:
                break
            key = bisect_right(cdf, rand())
            if key > last:
                key = last
            if not self.up:
                bypassed += 1
            else:
                if lfu:
                    counts[key] = counts.get(key, 0) + 1
                stored = store.get(key)
                if stored is not None and ttl and t - stored >= ttl:
                    self._remove(key)
                    expired += 1
                    stored = None
                if stored is None:
                    misses += 1
                    self._admit(key, t)
                else:
                    hits += 1
                    if key in stale_set:
                        stale += 1
                    if lru:
                        store.move_to_end(key)
                    elif lfu:
                        self._lfu_push(key, counts[key])
            t += expo(rate)
        self.next_read = t
        self.stale_reads += stale
        self.expirations += expired
        evicted = self.evictions - before[0]
        loads = self.db_reads - before[4]  # the warm-up job's reads, made meanwhile
        return (
            self._tally(
                hits,
                misses,
                bypassed,
                evicted,
                stale=stale,
                expired=expired,
                writes=self.writes - before[1],
                db_writes=self.db_writes - before[2],
                write_backs=self.write_backs - before[3],
                loads=loads,
                other=other,
            )
            + events
        )

    def _background(self, t: float) -> list[Event]:
        """Carry out whichever of a write, a flush or a warm-up load is due at ``t``."""
        if self.next_write == t:
            self._write(self._draw_key(), t)
            self.next_write = t + self.rng.expovariate(self.p["write_rate"])
        elif self.next_burst == t:
            self._write(self._draw_key(), t)
            self.next_burst = t + self.rng.expovariate(self.burst_rate)
            if self.next_burst > self.burst_end:
                self.next_burst = INF
        elif self.next_flush == t:
            self._write_back_all()
            self.next_flush = t + self.p["flush_interval_s"]
        else:
            return self._warm_step(t)
        return []

    def _draw_key(self) -> int:
        key = bisect_right(self._cdf, self.rng.random())
        return min(key, self.p["keys"] - 1)

    def _write(self, key: int, t: float) -> None:
        """Write object (or row) ``key`` at time ``t``, as the write policy says."""
        self.writes += 1
        store = self.store
        if not self.up or self.p["key_mode"] == "query":
            # The cache cannot be told: the database takes the write and any cached
            # copy of the row is now stale.
            self.db_writes += 1
            if self.p["key_mode"] == "query":
                keys = self.p["keys"]
                for j in range(min(self.p["rows_per_query"], keys)):
                    query = (key - j) % keys
                    if query in store:
                        self.stale.add(query)
            elif key in store:
                self.stale.add(key)
            return
        policy = self.p["write_policy"]
        if policy == "invalidate":
            self.db_writes += 1
            if key in store:
                self._remove(key)
            return
        if policy == "write_through":
            self.db_writes += 1
        else:
            self.dirty[key] = self.dirty.get(key, 0) + 1
        if key in store:
            store[key] = t
            self.stale.discard(key)
            if self.p["policy"] == "lru":
                store.move_to_end(key)
        else:
            self._admit(key, t)

    def _warm_step(self, t: float) -> list[Event]:
        key = self.warm_key
        if key not in self.store:
            self.db_reads += 1
            self.warm_loaded += 1
            self._admit(key, t)
        self.warm_key += 1
        self.warm_progress = self.warm_key / self.warm_total
        if self.warm_key >= self.warm_total:
            self.warm_next = INF
            return [{"type": "cache.warm_done", "t": t, "loaded": self.warm_loaded}]
        self.warm_next = t + self.warm_interval
        return []

    # Entries ------------------------------------------------------------------

    def _admit(self, key: int, t: float) -> None:
        """Store ``key`` (not cached) and evict one entry if the cache is over capacity."""
        self.store[key] = t
        policy = self.p["policy"]
        if policy == "random":
            self.slot_of[key] = len(self.slots)
            self.slots.append(key)
        elif policy == "lfu":
            self._lfu_push(key, self.counts.get(key, 0))
        if len(self.store) > self.p["capacity"]:
            self._evict_one()

    def _lfu_push(self, key: int, count: int) -> None:
        self.seq += 1
        heappush(self.heap, (count, self.seq, key))
        self.heap_seq[key] = self.seq
        if len(self.heap) > 2 * len(self.heap_seq) + 64:
            valid = self.heap_seq
            self.heap = [e for e in self.heap if valid.get(e[2]) == e[1]]
            heapify(self.heap)

    def _evict_one(self) -> None:
        """Evict the entry the policy chooses (writing it back if dirty)."""
        policy = self.p["policy"]
        if policy == "random":
            key = self.slots[int(self.rng.random() * len(self.slots))]
            self._unslot(key)
            del self.store[key]
        elif policy == "lfu":
            heap, valid = self.heap, self.heap_seq
            while True:
                _, seq, key = heappop(heap)
                if valid.get(key) == seq:
                    break
            del valid[key]
            del self.store[key]
        else:
            key, _ = self.store.popitem(last=False)
        self.evictions += 1
        self._forget(key)

    def _remove(self, key: int) -> None:
        """Drop cached ``key`` (invalidated or expired), writing it back if dirty."""
        del self.store[key]
        policy = self.p["policy"]
        if policy == "random":
            self._unslot(key)
        elif policy == "lfu":
            del self.heap_seq[key]
        self._forget(key)

    def _unslot(self, key: int) -> None:
        index = self.slot_of.pop(key)
        moved = self.slots.pop()
        if moved != key:
            self.slots[index] = moved
            self.slot_of[moved] = index

    def _forget(self, key: int) -> None:
        self.stale.discard(key)
        pending = self.dirty.pop(key, 0)
        if pending:
            self.db_writes += 1
            self.write_backs += 1
            self.flushed_writes += pending

    def _write_back_all(self) -> int:
        written = len(self.dirty)
        self.db_writes += written
        self.write_backs += written
        self.flushed_writes += sum(self.dirty.values())
        self.dirty.clear()
        return written

    def _clear(self) -> None:
        self.store.clear()
        self.stale.clear()
        self.counts.clear()
        self.heap.clear()
        self.heap_seq.clear()
        self.slots.clear()
        self.slot_of.clear()

    def _index_policy(self) -> None:
        """Rebuild the policy's bookkeeping from the cached entries (policy changed)."""
        policy = self.p["policy"]
        self.slots = list(self.store) if policy == "random" else []
        self.slot_of = {k: i for i, k in enumerate(self.slots)}
        self.heap = []
        self.heap_seq = {}
        if policy == "lfu":
            for key in self.store:
                self._lfu_push(key, self.counts.get(key, 0))
        else:
            self.counts.clear()

    def _shrink(self, capacity: int) -> int:
        evicted = 0
        while len(self.store) > capacity:
            self._evict_one()
            evicted += 1
        return evicted

    # Figures ------------------------------------------------------------------

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
            "writes": self.writes,
            "stale_reads": self.stale_reads,
            "expirations": self.expirations,
            "lost_writes": self.lost_writes,
            "db_writes_per_s": self.db_writes / elapsed,
            "hit_ratio_recent": recent_hits / recent_reads if recent_reads else 0.0,
            "latency_ms_recent": w.total("latency", now) / recent_reads
            if recent_reads
            else 0.0,
            "hits_per_s_recent": recent_hits / span,
            "misses_per_s_recent": recent_misses / span,
            "db_reads_per_s_recent": w.total("db_reads", now) / span,
            "occupancy": len(self.store),
            "cache_up": 1 if self.up else 0,
            "stale_per_s_recent": w.total("stale", now) / span,
            "writes_per_s_recent": w.total("writes", now) / span,
            "db_writes_per_s_recent": w.total("db_writes", now) / span,
            "dirty": len(self.dirty),
            "warm_progress": self.warm_progress,
        }

    def picture(self) -> dict[str, Any]:
        # Whether keys of every popularity are cached, as "1" and "0": ranks spaced
        # evenly on a log scale from the hottest key to the coldest.
        store = self.store
        keys = self.p["keys"]
        last = self.PICTURE_KEYS - 1
        ranks = sorted({round(keys ** (i / last)) for i in range(last + 1)})
        return {
            "hot": "".join("1" if r - 1 in store else "0" for r in ranks),
            "keys": keys,
            "capacity": self.p["capacity"],
        }

    # Theory -------------------------------------------------------------------

    def theory_key(self) -> tuple[Any, ...]:
        return (*super().theory_key(), self.up)

    def compute_theory(self) -> TheoryFigures:
        p = self.p
        cache_ms, db_ms, rate = (
            p["cache_latency_ms"],
            p["db_latency_ms"],
            p["read_rate"],
        )
        if not self.up:
            return {"hit_ratio": 0.0, "mean_latency_ms": db_ms, "db_reads_per_s": rate}
        keys, s, capacity, policy = p["keys"], p["zipf_s"], p["capacity"], p["policy"]
        why = ""
        if p["write_rate"] > 0 and p["key_mode"] == "object":
            why = (
                "writes drop or add entries besides the reads: the independent-"
                "reference model behind the hit-ratio formulas has no writes"
            )
        elif p["ttl_s"] > 0 and capacity < keys:
            why = (
                "entries both expire and are evicted: the formulas cover one or "
                "the other (set the capacity to the catalogue size for the TTL one)"
            )
        if why:
            return {"hit_ratio": why, "mean_latency_ms": why, "db_reads_per_s": why}
        if p["ttl_s"] > 0:
            hit = zipf_ttl_hit_ratio(keys, s, rate, p["ttl_s"])
        elif policy == "lru":
            hit = zipf_che_hit_ratio(keys, s, capacity)
        elif policy == "lfu":
            hit = zipf_lfu_hit_ratio(keys, s, capacity)
        else:
            hit = zipf_fifo_hit_ratio(keys, s, capacity)
        return {
            "hit_ratio": hit,
            "mean_latency_ms": cache_ms + (1.0 - hit) * db_ms,
            "db_reads_per_s": rate * (1.0 - hit),
        }

    # Commands -----------------------------------------------------------------

    def on_flush(self) -> list[Event]:
        written = self._write_back_all()
        dropped = len(self.store)
        self._clear()
        return [
            {
                "type": "cache.flush",
                "t": self.now,
                "dropped": dropped,
                "written_back": written,
            }
        ]

    def on_crash(self) -> list[Event]:
        lost = sum(self.dirty.values())
        objects = len(self.dirty)
        if self.p["backend"] == "redis":
            # The persisted entries survive; the dirty ones never reached the
            # database and their buffered values are not trusted after a crash.
            for key in list(self.dirty):
                self.dirty[key] = 0
                self._remove(key)
            dropped = objects
        else:
            dropped = len(self.store)
            self._clear()
        self.dirty.clear()
        self.lost_writes += lost
        self.up = False
        self.warm_next = INF
        events: list[Event] = [
            {
                "type": "cache.crash",
                "t": self.now,
                "dropped": dropped,
                "kept": len(self.store),
            }
        ]
        if lost:
            events.append(
                {
                    "type": "cache.lost_write",
                    "t": self.now,
                    "writes": lost,
                    "objects": objects,
                }
            )
        return events

    def on_restart(self) -> list[Event]:
        was_up = self.up
        self.up = True
        return [
            {
                "type": "cache.restart",
                "t": self.now,
                "was_up": was_up,
                "entries": len(self.store),
            }
        ]

    def on_resize(self, capacity: int) -> list[Event]:
        self.p["capacity"] = capacity
        evicted = self._shrink(capacity)
        return [
            {
                "type": "cache.resize",
                "t": self.now,
                "capacity": capacity,
                "evicted": evicted,
            }
        ]

    def on_write_burst(self, writes: int, duration_s: float) -> list[Event]:
        self.burst_rate = writes / duration_s
        self.burst_end = self.now + duration_s
        self.next_burst = self.now + self.rng.expovariate(self.burst_rate)
        if self.next_burst > self.burst_end:
            self.next_burst = INF
        return [
            {
                "type": "cache.write_burst",
                "t": self.now,
                "writes": writes,
                "duration_s": duration_s,
            }
        ]

    def on_warm(self, count: int, rate: float) -> list[Event]:
        if not self.up:
            raise CommandError("warm", "warm: the cache is down; restart it first")
        capacity, keys = self.p["capacity"], self.p["keys"]
        self.warm_total = min(count or capacity, capacity, keys)
        self.warm_key = 0
        self.warm_loaded = 0
        self.warm_progress = 0.0
        self.warm_interval = 1.0 / rate
        self.warm_next = self.now
        return [
            {
                "type": "cache.warm",
                "t": self.now,
                "count": self.warm_total,
                "rate": rate,
            }
        ]

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        p = self.p
        if name == "capacity":
            evicted = self._shrink(p["capacity"])
            return [
                {
                    "type": "cache.resize",
                    "t": self.now,
                    "capacity": p["capacity"],
                    "evicted": evicted,
                }
            ]
        if name == "keys":
            for key in [k for k in self.store if k >= p["keys"]]:
                self._remove(key)
            self.warm_total = min(self.warm_total, p["keys"])
            if self.warm_key >= self.warm_total:
                self.warm_next = INF
        elif name == "policy":
            self._index_policy()
        elif name == "write_rate":
            rate = p["write_rate"]
            self.next_write = self.now + self.rng.expovariate(rate) if rate > 0 else INF
        elif name in ("write_policy", "flush_interval_s"):
            if old == "write_behind":
                written = self._write_back_all()
                self.next_flush = INF
                return (
                    [{"type": "cache.write_back", "count": written}]
                    if written
                    else None
                )
            self.next_flush = self._first_flush()
        elif name == "key_mode":
            # An entry's key now means something else: start from an empty cache.
            return self.on_flush()
        elif name == "backend" and not self.up and p["backend"] == "memcached":
            self._clear()
        return None
