"""The whole stack: CDN, balancer, app servers, sessions, cache, database, job queue.

Every layer is a station of an open Jackson network: one or more M/M/c servers
(first come first served, exponential service times) with a queue of bounded
length, and a request moves from layer to layer at random (a CDN hit or not, a
read or a write, a cache hit or not, which shard, which replica). Each fix of
the study notes' story (clone the app servers behind a balancer, move sessions
to a central store, add a cache, add replicas, shard, hand slow work to a job
queue) takes load off one layer and shows which one saturates next.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from functools import lru_cache
from heapq import heapify, heappop, heappush
from typing import Any

from ..theory.caching import zipf_che_hit_ratio
from ..theory.jackson import Station
from .base import (
    TICK,
    Command,
    CommandError,
    Engine,
    Event,
    Metric,
    Param,
    ParamError,
    TheoryFigures,
)

LAYERS = ("cdn", "lb", "app", "session", "cache", "db", "queue")
CDN, LB, APP, SESSION, CACHE, DB, QUEUE = range(len(LAYERS))
LABELS = (
    "CDN",
    "Balancer",
    "App servers",
    "Session store",
    "Cache",
    "Database",
    "Job queue",
)
HOURS_PER_MONTH = 730
RECENT_S = 5.0  # seconds behind the live figures
# However overloaded, a run holds at most this many requests (the balancer's
# connection limit) and the broker this many jobs: memory and the work of a
# frame stay bounded.
MAX_IN_FLIGHT = 20_000
JOB_LIMIT = 10_000
DAILY_PEAK = 1.8  # the daily rate runs from 0.2 to 1.8 times its mean
SPIKE_START, SPIKE_STOP = 0.5, 0.6  # periodic spikes: this part of each period
INF = math.inf
# Cumulative counters, in ``self.tot``.
(
    ARRIVED,
    SERVED,
    ERRORS,
    LOST,
    HITS,
    READS,
    RESPONSE,
    EDGE,
    JOB_WAIT,
    JOBS_STARTED,
    JOBS_DONE,
    JOBS_LOST,
) = range(12)
SOJOURN = 12  # then one sojourn total per layer
N_TOTALS = SOJOURN + len(LAYERS)
# Response times go in logarithmic bins, 20 per factor e (5 % wide) from 10
# microseconds up: the 95th percentile to about 2.5 %.
_LOG_LO = math.log(1e-5)
_BINS_PER_E = 20
_TOP_BIN = int((math.log(1e4) - _LOG_LO) * _BINS_PER_E)


@lru_cache(maxsize=256)
def _che(keys: int, zipf_s: float, entries: int) -> float:
    return zipf_che_hit_ratio(keys, zipf_s, entries)


def _bin_value(index: int) -> float:
    return math.exp(_LOG_LO + (index + 0.5) / _BINS_PER_E)


def _ms(name: str, default: float, label: str, help_text: str, top: float) -> Param:
    return Param(
        name, "float", default, 0.01, top, unit="ms", help=help_text, label=label
    )


def _cost(name: str, default: float, label: str, what: str) -> Param:
    return Param(
        name,
        "float",
        default,
        0.0,
        100.0,
        unit="$/h",
        step=0.005,
        help=f"What one {what} costs an hour (default {default:g}); a month is "
        f"{HOURS_PER_MONTH} hours.",
        label=label,
    )


JACKSON = (
    "Jackson network: the sum over layers of visits x mean sojourn, each "
    "station M/M/c (Erlang C; M/G/c by Allen-Cunneen where service times mix)"
)


LAYER_ARG = Param(
    "layer",
    "choice",
    "db",
    choices=LAYERS,
    help="Which layer: cdn, lb (balancer), app, session (store), cache, db or "
    "queue (the workers); it must be present in this setup.",
    label="Layer",
)


def _per_layer(
    prefix: str, words: str, unit: str, help: str, summary: bool = True
) -> tuple[Metric, ...]:
    """One metric for each layer: ``<prefix>_<layer>``, labelled "<Layer> <words>"."""
    return tuple(
        Metric(f"{prefix}_{name}", f"{label} {words}", unit, help=help, summary=summary)
        for name, label in zip(LAYERS, LABELS, strict=True)
    )


class StackEngine(Engine):
    kind = "stack"
    title = "The whole stack"
    description = (
        "A request goes through every layer of a web site: a CDN for pre-rendered "
        "pages, a load balancer, app servers, a session store, a cache and a "
        "database with replicas and shards, while slow work goes to a job queue. "
        "Each layer queues when it is busy; the busiest one is the bottleneck. "
        "Fix it and watch the bottleneck move to the next layer, break a layer "
        "and watch the others take the load, and see what it all costs a month."
    )
    params = (
        Param(
            "rate",
            "float",
            200.0,
            0.1,
            5_000.0,
            unit="req/s",
            step=10,
            help="Requests a second, arriving at random (Poisson); with daily "
            "traffic, the day's mean.",
            label="Request rate",
        ),
        Param(
            "traffic",
            "choice",
            "steady",
            choices=("steady", "daily", "spike"),
            help="steady: the same rate all the time; daily: a day compressed into "
            f"day_s seconds, from 0.2 to {DAILY_PEAK:g} times the rate; spike: a "
            "spike of spike_factor times the rate for a tenth of every day_s.",
            label="Traffic",
        ),
        Param(
            "day_s",
            "float",
            120.0,
            10.0,
            3_600.0,
            unit="s",
            step=10,
            help="Simulated seconds a day of daily traffic, or between spikes.",
            label="Day length",
        ),
        Param(
            "spike_factor",
            "float",
            3.0,
            1.0,
            10.0,
            step=0.5,
            help="How many times the rate a periodic spike brings (spike traffic).",
            label="Periodic spike",
        ),
        Param(
            "cdn",
            "bool",
            False,
            help="Serve pre-rendered pages from a CDN at the edge.",
            label="CDN",
        ),
        Param(
            "cdn_share",
            "float",
            0.5,
            0.0,
            1.0,
            step=0.05,
            help="Share of requests for pre-rendered pages, answered by the CDN "
            "without reaching the site (with the CDN on).",
            label="CDN share",
        ),
        _ms("cdn_ms", 20.0, "CDN latency", "Time the CDN takes to answer.", 1_000.0),
        Param(
            "balancer",
            "choice",
            "single",
            choices=("none", "single", "pair"),
            help="none: requests go straight to the one app server; single: one "
            "load balancer; pair: an active balancer and a standby that takes over "
            "when it fails. The balancer picks an app server at random.",
            label="Load balancer",
        ),
        _ms("lb_ms", 0.5, "Balancer time", "Time the balancer takes a request.", 100.0),
        Param(
            "app_servers",
            "int",
            4,
            1,
            64,
            unit="servers",
            help="App servers (clones) behind the balancer.",
            label="App servers",
        ),
        Param(
            "app_threads",
            "int",
            1,
            1,
            64,
            unit="threads",
            help="Requests one app server works on at once.",
            label="Threads per server",
        ),
        _ms(
            "app_ms",
            10.0,
            "App time",
            "Mean time an app server takes to build a page (exponential).",
            10_000.0,
        ),
        Param(
            "sessions",
            "choice",
            "central",
            choices=("local", "sticky", "central"),
            help="local: each server keeps its users' sessions in memory, so a "
            "user sent to another server is logged out; sticky: the balancer sends "
            "each user to the server users[i] mod servers up (logged out only when "
            "that changes); central: a shared session store visited on every "
            "request, so any server will do.",
            label="Sessions",
        ),
        Param(
            "users",
            "int",
            1_000,
            1,
            100_000,
            unit="users",
            help="Logged-in users, each request from one of them at random.",
            label="Users",
        ),
        _ms(
            "session_ms",
            1.0,
            "Session store time",
            "Time the central session store takes a request.",
            1_000.0,
        ),
        Param(
            "cache_items",
            "int",
            10_000,
            0,
            1_000_000,
            unit="entries",
            help="Entries the cache holds (LRU); 0 for no cache. Its hit ratio "
            "comes from Che's approximation for these keys and skew.",
            label="Cache size",
        ),
        Param(
            "keys",
            "int",
            100_000,
            1,
            1_000_000,
            unit="keys",
            help="Distinct things read (rows, pages, query results).",
            label="Keys",
        ),
        Param(
            "zipf_s",
            "float",
            0.9,
            0.0,
            2.0,
            step=0.1,
            help="Skew of reads over the keys (Zipf): 0 even, 1 and more a few "
            "hot keys.",
            label="Skew",
        ),
        _ms("cache_ms", 0.5, "Cache time", "Time the cache takes a read.", 1_000.0),
        Param(
            "write_share",
            "float",
            0.1,
            0.0,
            1.0,
            step=0.05,
            help="Share of requests that write; writes go to their shard's master.",
            label="Write share",
        ),
        Param(
            "replicas",
            "int",
            1,
            0,
            16,
            unit="replicas",
            help="Read replicas per shard: reads that miss the cache are spread "
            "evenly over the master and its replicas.",
            label="Replicas",
        ),
        Param(
            "shards",
            "int",
            1,
            1,
            16,
            unit="shards",
            help="Shards splitting the database load evenly by key, each with its "
            "own master and replicas.",
            label="Shards",
        ),
        _ms("db_read_ms", 5.0, "Read time", "Mean time of a database read.", 10_000.0),
        _ms(
            "db_write_ms",
            10.0,
            "Write time",
            "Mean time of a database write.",
            10_000.0,
        ),
        Param(
            "slow_share",
            "float",
            0.1,
            0.0,
            1.0,
            step=0.05,
            help="Share of requests carrying slow work (a report, an e-mail, "
            "resizing an image).",
            label="Slow share",
        ),
        _ms("slow_ms", 100.0, "Slow work", "Mean time of the slow work.", 60_000.0),
        Param(
            "job_queue",
            "bool",
            True,
            help="Hand slow work to a job queue drained by workers (the request "
            "only enqueues it); off, the app server does it while the user waits.",
            label="Job queue",
        ),
        Param(
            "workers",
            "int",
            8,
            1,
            256,
            unit="workers",
            help="Workers taking jobs from the queue.",
            label="Workers",
        ),
        Param(
            "queue_limit",
            "int",
            1_000,
            1,
            10_000,
            unit="requests",
            help="Requests that may wait at one instance; past it they are "
            f"dropped as errors (the job queue holds up to {JOB_LIMIT:,} jobs, the "
            f"whole site {MAX_IN_FLIGHT:,} requests).",
            label="Queue limit",
        ),
        _cost("cost_lb", 0.025, "Balancer cost", "load balancer"),
        _cost("cost_app", 0.10, "App server cost", "app server"),
        _cost("cost_session", 0.05, "Session store cost", "session store"),
        _cost("cost_cache", 0.07, "Cache cost", "cache node"),
        _cost("cost_db", 0.25, "Database cost", "database master or replica"),
        _cost("cost_worker", 0.05, "Worker cost", "worker"),
        Param(
            "cost_cdn",
            "float",
            0.75,
            0.0,
            100.0,
            unit="$/million",
            step=0.05,
            help="What the CDN charges per million requests it answers (default "
            "0.75), at the rate of the last few seconds.",
            label="CDN cost",
        ),
    )
    commands = (
        Command(
            "fail",
            "Fail",
            "Break one instance of a layer: an app server, the cache (every read "
            "then goes to the database), a database master (its writes fail; "
            "reads go on on its replicas), the balancer, the session store, the "
            "CDN or a worker. Requests it held are lost.",
            args=(LAYER_ARG,),
        ),
        Command(
            "repair",
            "Repair",
            "Bring a failed instance of a layer back (a cache comes back empty).",
            args=(LAYER_ARG,),
        ),
        Command(
            "spike",
            "Traffic spike",
            "Multiply the request rate for a while.",
            args=(
                Param(
                    "factor",
                    "float",
                    3.0,
                    1.0,
                    20.0,
                    help="How many times the rate.",
                    label="Factor",
                ),
                Param(
                    "seconds",
                    "float",
                    10.0,
                    1.0,
                    600.0,
                    unit="s",
                    help="How long the spike lasts.",
                    label="Seconds",
                ),
            ),
        ),
    )
    event_types = (
        "layer.failed",
        "layer.repaired",
        "traffic.spike",
        "traffic.spike_over",
        "request.served",
        "request.failed",
        "session.lost",
        "job.done",
    )
    narration = {
        "layer.failed": "{what} failed; {lost#request} in flight lost",
        "layer.repaired": "{what} is back{cold? (empty: it fills up again)|}",
        "traffic.spike": "Traffic jumped to {factor} times for {seconds} s",
        "traffic.spike_over": "The traffic spike is over",
    }
    theory_models = {
        "response_ms": JACKSON,
        "mean_response_ms": JACKSON,
        "hit_ratio": "Che's approximation for LRU (Zipf reads)",
        "job_wait_ms": "Erlang C (M/M/c) at the workers",
        **{f"share_ms_{name}": JACKSON for name in LAYERS},
        **{
            f"util_{name}": "offered load lambda E[S] / c (the busier of masters "
            "and replicas for the database)"
            for name in LAYERS[1:]
        },
        "util_db_masters": "offered load lambda E[S] / c of the masters",
        "util_db_replicas": "offered load lambda E[S] / c of the replicas",
    }
    metric_specs = (
        Metric("rps", "Requests a second", "req/s", help="Arrivals, last 5 s."),
        Metric(
            "response_ms",
            "Response time",
            "ms",
            help="Mean time to answer a request, last 5 s (errors left out).",
        ),
        Metric(
            "response_p95_ms",
            "95th percentile response",
            "ms",
            help="Last 5 s, from 5 % bins.",
        ),
        Metric(
            "mean_response_ms",
            "Mean response (run)",
            "ms",
            help="Mean response time since the statistics were reset.",
        ),
        Metric("errors_per_s", "Errors a second", "req/s", help="Last 5 s."),
        Metric(
            "errors",
            "Errors",
            "requests",
            help="Requests that failed since the reset: dropped by a full queue, "
            "lost in an instance that failed, or with nowhere to go (a write "
            "whose master is down, no app server up).",
        ),
        Metric(
            "lost_sessions",
            "Lost sessions",
            "requests",
            help="Requests whose user was logged out since the reset: sent to a "
            "server without their session, or the session store down.",
        ),
        Metric("lost_sessions_per_s", "Lost sessions a second", "req/s"),
        Metric(
            "hit_ratio",
            "Cache hit ratio",
            help="Reads answered by the cache, last 5 s (0 with no cache; a "
            "cache that is down misses every read).",
        ),
        Metric(
            "job_wait_ms",
            "Job wait",
            "ms",
            help="Time a job waited for a worker, last 5 s (not part of the "
            "response time).",
        ),
        Metric("jobs_waiting", "Jobs waiting", "jobs", summary=False),
        Metric("jobs_done", "Jobs done", "jobs"),
        Metric(
            "jobs_lost",
            "Jobs lost",
            "jobs",
            help="Turned away by a full job queue, or lost with the queue itself.",
        ),
        Metric("arrived", "Arrived", "requests"),
        Metric("served", "Served", "requests"),
        Metric("in_flight", "In flight", "requests", summary=False),
        *_per_layer(
            "util",
            "utilisation",
            "",
            "Busy share of its working instances, last 5 s (for the database, the "
            "busier of its masters and its replicas).",
        ),
        Metric(
            "util_db_masters",
            "Database masters utilisation",
            "",
            help="Busy share of the working database masters, which do every write "
            "and their share of the reads, last 5 s.",
        ),
        Metric(
            "util_db_replicas",
            "Database replicas utilisation",
            "",
            help="Busy share of the working read replicas, which only read, last "
            "5 s (0 with none).",
        ),
        *_per_layer(
            "queue",
            "queue",
            "requests",
            "Requests waiting (not in service) at its instances, mean over the "
            "last 5 s.",
            summary=False,
        ),
        *_per_layer(
            "share_ms",
            "share of response",
            "ms",
            "Visits x mean time spent there per request answered, last 5 s (the "
            "job queue's is 0: it is not part of the response).",
        ),
        *_per_layer(
            "cost",
            "cost",
            "$/month",
            "Instances provisioned (failed ones too) x cost an hour x "
            f"{HOURS_PER_MONTH}; the CDN per million requests.",
            summary=False,
        ),
        Metric("cost_month", "Cost a month", "$/month"),
        Metric(
            "bottleneck",
            "Bottleneck",
            help="The layer with the highest utilisation (none before any work).",
            summary=False,
            words=(*zip(LAYERS, LABELS, strict=True), ("none", "none yet")),
        ),
    )

    # Rules and layout ---------------------------------------------------------

    @classmethod
    def check_params(cls, values: dict[str, Any]) -> None:
        if values["balancer"] == "none" and values["app_servers"] > 1:
            raise ParamError(
                "balancer",
                "balancer must be one of single, pair when app_servers is more "
                f"than 1 ({values['app_servers']}): without a balancer only one "
                "server can take the traffic",
            )

    def present(self) -> list[str]:
        """Return the layers this setup has, in request order."""
        p = self.p
        on = (
            p["cdn"],
            p["balancer"] != "none",
            True,
            p["sessions"] == "central",
            p["cache_items"] > 0,
            True,
            p["job_queue"],
        )
        return [name for name, here in zip(LAYERS, on) if here]

    def _spec(self) -> list[tuple[tuple[Any, ...], int, int, int]]:
        """Return the stations this setup has: (key, layer, group, servers)."""
        p = self.p
        spec: list[tuple[tuple[Any, ...], int, int, int]] = []
        if p["balancer"] != "none":
            spec.append((("lb",), LB, 0, 1))
        for i in range(p["app_servers"]):
            spec.append((("app", i), APP, 0, p["app_threads"]))
        if p["sessions"] == "central":
            spec.append((("session",), SESSION, 0, 1))
        if p["cache_items"] > 0:
            spec.append((("cache",), CACHE, 0, 1))
        for k in range(p["shards"]):
            for j in range(p["replicas"] + 1):
                spec.append((("db", k, j), DB, 1 if j else 0, 1))
        if p["job_queue"]:
            spec.append((("queue",), QUEUE, 0, p["workers"] - self.workers_down))
        return spec

    # World ---------------------------------------------------------------------

    def setup(self) -> None:
        self.down: set[tuple[Any, ...]] = set()  # stations failed
        self.lb_down = 0  # balancers failed (of 1 or 2)
        self.workers_down = 0
        self.cdn_down = False
        self.key: list[tuple[Any, ...]] = []
        self.layer: list[int] = []
        self.group: list[int] = []
        self.cs: list[int] = []  # servers working at each station
        self.busy: list[int] = []
        self.queues: list[deque[tuple[float, Any, float]]] = []
        self.work: list[float] = []  # service seconds started (lifetime)
        self.cap: list[float] = []  # server-seconds on hand (lifetime)
        self.qarea: list[float] = []  # seconds waited by those that left the queue
        self.lim: list[int] = []
        # In service: (done at, seq, station, entered the station at, request);
        # a request is (arrived at, writes, slow, user), a job None. The
        # sentinel (INF, 0, -1, ...) keeps the heap from ever being empty.
        self.heap: list[tuple[float, int, int, float, Any]] = [(INF, 0, -1, 0.0, None)]
        self.seq = 0
        self.inflight = 0
        self.home = array("i", [-1]) * self.p["users"]  # app server of each session
        self.fill = self.p["cache_items"]  # the cache starts warm
        self.hit = 0.0
        self.fill_next = INF
        self._update_hit()
        self.tot = [0.0] * N_TOTALS
        self.hist: dict[int, int] = {}  # responses since the last mark, by bin
        self.marks: deque[tuple[Any, ...]] = deque()
        self._relayout()
        self.cmd_factor = 1.0
        self.cmd_end = -INF
        self.spike_on = False
        self.lam, self.edge = self._regime(0.0)
        self.next_arrival = self.rng.expovariate(self.lam)
        self._mark(0.0)
        self.reset_stats()

    def reset_stats(self) -> None:
        self.base = list(self.tot)

    def _relayout(self) -> int:
        """Build the stations of the current setup, keeping those that stay.

        Return how many requests were lost in stations that went away.
        """
        spec = self._spec()
        old = {k: i for i, k in enumerate(self.key)}
        mapping: dict[int, int] = {}
        key: list[tuple[Any, ...]] = []
        layer: list[int] = []
        group: list[int] = []
        cs: list[int] = []
        busy: list[int] = []
        queues: list[deque[tuple[float, Any, float]]] = []
        work: list[float] = []
        cap: list[float] = []
        qarea: list[float] = []
        for n, (k, lay, grp, servers) in enumerate(spec):
            key.append(k)
            layer.append(lay)
            group.append(grp)
            o = old.get(k)
            if lay == LB:
                instances = 2 if self.p["balancer"] == "pair" else 1
                self.lb_down = min(self.lb_down, instances)
                servers = 1 if self.lb_down < instances else 0
            elif lay != QUEUE and k in self.down:
                servers = 0
            cs.append(servers)
            if o is None:
                busy.append(0)
                queues.append(deque())
                work.append(0.0)
                cap.append(0.0)
                qarea.append(0.0)
            else:
                mapping[o] = n
                busy.append(self.busy[o])
                queues.append(self.queues[o])
                work.append(self.work[o])
                cap.append(self.cap[o])
                qarea.append(self.qarea[o])
        lost = 0
        for o, q in enumerate(self.queues):
            if o not in mapping:
                lost += self._drop_waiting(q)
        heap = []
        for entry in self.heap:
            s = entry[2]
            if s < 0 or s in mapping:
                heap.append(entry if s < 0 else (*entry[:2], mapping[s], *entry[3:]))
            else:
                lost += self._drop_one(entry[4])
        heapify(heap)
        self.heap = heap
        self.down &= set(key)
        self.key, self.layer, self.group, self.cs = key, layer, group, cs
        self.busy, self.queues, self.work, self.cap, self.qarea = (
            busy,
            queues,
            work,
            cap,
            qarea,
        )
        self.lim = [
            JOB_LIMIT if lay == QUEUE else self.p["queue_limit"] for lay in layer
        ]
        # The marks of the recent window follow the stations; a new one starts
        # from nothing, as its lifetime figures do.
        n = len(key)
        for i, (t, tot, done, capm, qm, hist) in enumerate(self.marks):
            moved = ([0.0] * n, [0.0] * n, [0.0] * n)
            for o, new in mapping.items():
                moved[0][new] = done[o]
                moved[1][new] = capm[o]
                moved[2][new] = qm[o]
            self.marks[i] = (t, tot, *moved, hist)
        self._route()
        for s in range(n):
            self._start_waiting(s)
        return lost

    def _drop_one(self, req: Any) -> int:
        if req is None:
            self.tot[JOBS_LOST] += 1
            return 0
        self.tot[ERRORS] += 1
        self.inflight -= 1
        return 1

    def _drop_waiting(self, q: deque[tuple[float, Any, float]]) -> int:
        lost = 0
        for _, req, _ in q:
            lost += self._drop_one(req)
        q.clear()
        return lost

    def _route(self) -> None:
        """Derive the routing tables from the stations and what is down."""
        p = self.p
        self.lb_s = self.session_s = self.cache_s = self.job_s = -1
        self.app_st: list[int] = []
        self.masters: list[int] = [-1] * p["shards"]
        self.readers: list[list[int]] = [[] for _ in range(p["shards"])]
        up_app: list[int] = []
        for s, k in enumerate(self.key):
            lay = self.layer[s]
            up = k not in self.down
            if lay == LB:
                self.lb_s = s if self.cs[s] else -2  # -2: present but down
            elif lay == APP:
                self.app_st.append(s)
                if up:
                    up_app.append(k[1])
            elif lay == SESSION:
                self.session_s = s if up else -2
            elif lay == CACHE:
                self.cache_s = s if up else -2
            elif lay == DB:
                if up:
                    self.readers[k[1]].append(s)
                    if k[2] == 0:
                        self.masters[k[1]] = s
            elif lay == QUEUE:
                self.job_s = s
        self.app_up = up_app

    def _start_waiting(self, s: int) -> None:
        """Start work waiting at station ``s`` on its free servers."""
        q = self.queues[s]
        now = self.now
        while q and self.busy[s] < self.cs[s]:
            te, req, mean = q.popleft()
            self._start(s, now, te, req, mean)

    def _start(self, s: int, t: float, te: float, req: Any, mean: float) -> None:
        self.busy[s] += 1
        self.qarea[s] += t - te
        d = -math.log(1.0 - self.rng.random()) * mean
        self.work[s] += d
        self.seq += 1
        heappush(self.heap, (t + d, self.seq, s, te, req))
        if req is None:
            self.tot[JOB_WAIT] += t - te
            self.tot[JOBS_STARTED] += 1

    def _update_hit(self) -> None:
        """Set the hit probability for the entries the cache holds now.

        Every miss of a cache not yet full adds an entry (LRU evicts only when
        full), so a cold cache's hit ratio climbs as it fills; it is computed
        again at every twentieth of its size.
        """
        p = self.p
        items = p["cache_items"]
        self.fill = min(self.fill, items)
        self.hit = _che(p["keys"], p["zipf_s"], self.fill) if items else 0.0
        full = min(items, p["keys"])
        step = max(1, items // 20)
        self.fill_next = (
            min((self.fill // step + 1) * step, full) if self.fill < full else INF
        )

    def _regime(self, t: float) -> tuple[float, float]:
        """Return the rate candidates arrive at from ``t`` and when it next changes."""
        p = self.p
        rate = p["rate"]
        edge = INF
        if t < self.cmd_end:
            rate *= self.cmd_factor
            edge = self.cmd_end
        if p["traffic"] == "daily":
            rate *= DAILY_PEAK  # thinned to the time of day
        elif p["traffic"] == "spike":
            period = p["day_s"]
            k = math.floor(t / period)
            start = (k + SPIKE_START) * period
            stop = (k + SPIKE_STOP) * period
            if start <= t < stop:
                rate *= p["spike_factor"]
                nxt = stop
            elif t < start:
                nxt = start
            else:
                nxt = (k + 1 + SPIKE_START) * period
            edge = min(edge, nxt)
        return rate, edge

    def _redraw(self) -> None:
        # Poisson arrivals have no memory: drawing the next one afresh is exact.
        self.lam, self.edge = self._regime(self.now)
        self.next_arrival = self.now + self.rng.expovariate(self.lam)

    # Running -------------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        p = self.p
        rng = self.rng
        rand = rng.random
        log = math.log
        cos = math.cos
        push, pop = heappush, heappop
        heap = self.heap
        layer, cs, busy, queues, work, lim = (
            self.layer,
            self.cs,
            self.busy,
            self.queues,
            self.work,
            self.lim,
        )
        qarea = self.qarea
        home = self.home
        hist = self.hist
        ms = 0.001
        lb_mean = p["lb_ms"] * ms
        app_mean = p["app_ms"] * ms
        slow_mean = p["slow_ms"] * ms
        app_slow = app_mean if p["job_queue"] else app_mean + slow_mean
        session_mean = p["session_ms"] * ms
        cache_mean = p["cache_ms"] * ms
        read_mean = p["db_read_ms"] * ms
        write_mean = p["db_write_ms"] * ms
        cdn_time = p["cdn_ms"] * ms
        edge_share = p["cdn_share"] if p["cdn"] and not self.cdn_down else 0.0
        write_share = p["write_share"]
        slow_share = p["slow_share"]
        users = p["users"]
        mode = p["sessions"]
        local = mode != "central"
        sticky = mode == "sticky"
        daily = p["traffic"] == "daily"
        omega = 2.0 * math.pi / p["day_s"]
        lb_s, session_s, cache_s, job_s = (
            self.lb_s,
            self.session_s,
            self.cache_s,
            self.job_s,
        )
        app_st, app_up = self.app_st, self.app_up
        n_up = len(app_up)
        masters, readers = self.masters, self.readers
        shards = len(masters)
        cache_on = cache_s != -1
        hit = self.hit
        fill, fill_next = self.fill, self.fill_next
        lo, per, top = _LOG_LO, _BINS_PER_E, _TOP_BIN
        seq = self.seq
        inflight = self.inflight
        ta, tb, lam = self.next_arrival, self.edge, self.lam
        arrived = served = errors = lost = hits = reads = edge = 0
        jobs_started = jobs_done = jobs_lost = events = 0
        response = job_wait = 0.0
        soj = [0.0] * len(LAYERS)
        notes: list[Event] = []

        def enter(s: int, t: float, req: Any, mean: float) -> bool:
            """Start or queue ``req`` at station ``s``; False if it is full."""
            nonlocal seq
            n = busy[s]
            if n < cs[s]:
                busy[s] = n + 1
                d = -log(1.0 - rand()) * mean
                work[s] += d
                seq += 1
                push(heap, (t + d, seq, s, t, req))
                return True
            q = queues[s]
            if len(q) < lim[s]:
                q.append((t, req, mean))
                return True
            return False

        while True:
            tc = heap[0][0]
            if ta <= tc:
                if tb <= ta:
                    # The rate changes: draw the next arrival afresh from the edge.
                    if tb > end:
                        break
                    t = tb
                    if self.spike_on and t >= self.cmd_end:
                        self.spike_on = False
                        notes.append({"type": "traffic.spike_over", "t": t})
                    lam, tb = self._regime(t)
                    ta = t - log(1.0 - rand()) / lam
                    events += 1
                    continue
                if ta > end:
                    break
                t = ta
                ta = t - log(1.0 - rand()) / lam
                if daily and rand() * DAILY_PEAK >= 1.0 - 0.8 * cos(omega * t):
                    continue  # thinned: the quiet hours of the day
                arrived += 1
                if edge_share and rand() < edge_share:
                    edge += 1
                    served += 1
                    response += cdn_time
                    soj[CDN] += cdn_time
                    k = int((log(cdn_time) - lo) * per) if cdn_time > 1e-5 else 0
                    hist[k if k < top else top] = hist.get(k if k < top else top, 0) + 1
                    continue
                if inflight >= MAX_IN_FLIGHT:
                    errors += 1
                    continue
                inflight += 1
                req = (
                    t,
                    rand() < write_share,
                    rand() < slow_share,
                    int(rand() * users) if local else 0,
                )
                if lb_s >= 0:
                    if enter(lb_s, t, req, lb_mean):
                        continue
                    errors += 1
                    inflight -= 1
                    continue
                if lb_s == -2:
                    errors += 1
                    inflight -= 1
                    continue
                nxt = APP
            else:
                if tc > end:
                    break
                t, _, s, te, req = pop(heap)
                events += 1
                lay = layer[s]
                n = busy[s] - 1
                busy[s] = n
                q = queues[s]
                if q and n < cs[s]:
                    te2, r2, m2 = q.popleft()
                    qarea[s] += t - te2
                    busy[s] = n + 1
                    d = -log(1.0 - rand()) * m2
                    work[s] += d
                    seq += 1
                    push(heap, (t + d, seq, s, te2, r2))
                    if r2 is None:
                        job_wait += t - te2
                        jobs_started += 1
                if lay == QUEUE:
                    jobs_done += 1
                    continue
                soj[lay] += t - te
                if lay == LB:
                    nxt = APP
                elif lay == APP:
                    if req[2] and job_s >= 0:
                        # The request only enqueues its slow work, and goes on.
                        if busy[job_s] < cs[job_s]:
                            jobs_started += 1
                        if not enter(job_s, t, None, slow_mean):
                            jobs_lost += 1
                    nxt = SESSION
                elif lay == SESSION:
                    nxt = CACHE
                elif lay == CACHE:
                    if rand() < hit:
                        hits += 1
                        nxt = -1
                    else:
                        if fill_next < INF:
                            # A cache not yet full keeps what it missed.
                            fill += 1
                            if fill >= fill_next:
                                self.fill = fill
                                self._update_hit()
                                hit, fill_next = self.hit, self.fill_next
                        nxt = -2  # a read for the database
                else:
                    nxt = -1
            # Move the request on through the layers.
            if nxt == APP:
                if not n_up:
                    errors += 1
                    inflight -= 1
                    continue
                if sticky:
                    u = req[3]
                    i = app_up[u % n_up]
                else:
                    i = app_up[int(rand() * n_up)] if n_up > 1 else app_up[0]
                if local:
                    u = req[3]
                    h = home[u]
                    if h != i:
                        if h >= 0:
                            lost += 1
                        home[u] = i
                if not enter(app_st[i], t, req, app_slow if req[2] else app_mean):
                    errors += 1
                    inflight -= 1
                continue
            if nxt == SESSION:
                if session_s >= 0:
                    if not enter(session_s, t, req, session_mean):
                        errors += 1
                        inflight -= 1
                    continue
                if session_s == -2:
                    lost += 1  # the store is down: the user is logged out
                nxt = CACHE
            if nxt == CACHE:
                if req[1]:
                    s = masters[int(rand() * shards)] if shards > 1 else masters[0]
                    if s < 0 or not enter(s, t, req, write_mean):
                        errors += 1
                        inflight -= 1
                    continue
                if cache_on:
                    reads += 1
                    if cache_s >= 0:
                        if not enter(cache_s, t, req, cache_mean):
                            errors += 1
                            inflight -= 1
                        continue
                nxt = -2
            if nxt == -2:
                nodes = readers[int(rand() * shards)] if shards > 1 else readers[0]
                if not nodes or not enter(
                    nodes[int(rand() * len(nodes))], t, req, read_mean
                ):
                    errors += 1
                    inflight -= 1
                continue
            # nxt == -1: answered.
            r = t - req[0]
            response += r
            served += 1
            inflight -= 1
            k = int((log(r) - lo) * per) if r > 1e-5 else 0
            if k > top:
                k = top
            hist[k] = hist.get(k, 0) + 1

        self.seq = seq
        self.inflight = inflight
        self.next_arrival, self.edge, self.lam = ta, tb, lam
        self.fill = fill
        self.processed += arrived + events
        tot = self.tot
        for index, amount in (
            (ARRIVED, arrived),
            (SERVED, served),
            (ERRORS, errors),
            (LOST, lost),
            (HITS, hits),
            (READS, reads),
            (RESPONSE, response),
            (EDGE, edge),
            (JOB_WAIT, job_wait),
            (JOBS_STARTED, jobs_started),
            (JOBS_DONE, jobs_done),
            (JOBS_LOST, jobs_lost),
        ):
            tot[index] += amount
        for i, amount in enumerate(soj):
            tot[SOJOURN + i] += amount
        dt = end - self.now
        cap = self.cap
        for s in range(len(cs)):
            cap[s] += cs[s] * dt
        if abs(end / TICK - round(end / TICK)) < 1e-9:
            self._mark(end)
        for name, amount in (
            ("request.served", served),
            ("request.failed", errors),
            ("session.lost", lost),
            ("job.done", jobs_done),
        ):
            if amount:
                notes.append({"type": name, "count": amount})
        return notes

    def _ahead(self, now: float) -> list[float]:
        """Return, per station, the service still to come of the work in progress."""
        ahead = [0.0] * len(self.key)
        for done_at, _, s, _, _ in self.heap:
            if s >= 0:
                ahead[s] += done_at - now
        return ahead

    def _waited(self, now: float) -> list[float]:
        """Return, per station, the seconds waited in its queue up to ``now``:
        the integral of its queue length over time (lifetime)."""
        out = list(self.qarea)
        for s, q in enumerate(self.queues):
            if q:
                out[s] += len(q) * now - sum(e[0] for e in q)
        return out

    def _mark(self, t: float) -> None:
        """Keep the figures at ``t``, the start of a later recent window."""
        ahead = self._ahead(t)
        done = [w - a for w, a in zip(self.work, ahead)]
        self.marks.append(
            (t, list(self.tot), done, list(self.cap), self._waited(t), self.hist)
        )
        self.hist = {}
        while len(self.marks) > 1 and self.marks[1][0] <= t - RECENT_S:
            self.marks.popleft()

    # Figures -------------------------------------------------------------------

    def _figures(self) -> dict[str, Any]:
        """Return the recent figures of the whole stack and of each layer."""
        now = self.now
        p = self.p
        t0, tot0, done0, cap0, q0, _ = self.marks[0]
        span = max(now - t0, 1e-9)
        tot = self.tot
        delta = [a - b for a, b in zip(tot, tot0)]
        ahead = self._ahead(now)
        waited = self._waited(now)
        busy_by: dict[tuple[int, int], list[float]] = {}
        queued = [0.0] * len(LAYERS)
        for s, lay in enumerate(self.layer):
            figures = busy_by.setdefault((lay, self.group[s]), [0.0, 0.0])
            figures[0] += self.work[s] - ahead[s] - done0[s]
            figures[1] += self.cap[s] - cap0[s]
            queued[lay] += (waited[s] - q0[s]) / span
        util = [0.0] * len(LAYERS)
        db_util = [0.0, 0.0]  # the masters', the replicas'
        for (lay, grp), (work, cap) in busy_by.items():
            if cap > 1e-12:
                util[lay] = max(util[lay], work / cap)
                if lay == DB:
                    db_util[grp] = work / cap
        served = delta[SERVED]
        share = [
            delta[SOJOURN + i] / served * 1000.0 if served else 0.0
            for i in range(len(LAYERS))
        ]
        share[QUEUE] = 0.0
        hist: dict[int, int] = {}
        for mark in list(self.marks)[1:]:
            for k, n in mark[5].items():
                hist[k] = hist.get(k, 0) + n
        for k, n in self.hist.items():
            hist[k] = hist.get(k, 0) + n
        present = self.present()
        instances = self._instances()
        up = self._up()
        edge_rate = delta[EDGE] / span
        cost = [0.0] * len(LAYERS)
        hourly = (
            0.0,
            p["cost_lb"],
            p["cost_app"],
            p["cost_session"],
            p["cost_cache"],
            p["cost_db"],
            p["cost_worker"],
        )
        for i in range(1, len(LAYERS)):
            cost[i] = instances[i] * hourly[i] * HOURS_PER_MONTH
        if p["cdn"]:
            cost[CDN] = edge_rate * 3600 * HOURS_PER_MONTH / 1e6 * p["cost_cdn"]
        bottleneck = "none"
        best = 0.0
        for i, name in enumerate(LAYERS):
            if name in present and util[i] > best:
                best, bottleneck = util[i], name
        return {
            "span": span,
            "delta": delta,
            "util": util,
            "db_util": db_util,
            "queued": queued,
            "share": share,
            "cost": cost,
            "instances": instances,
            "up": up,
            "present": present,
            "bottleneck": bottleneck,
            "p95": self._percentile(hist, 0.95),
        }

    def _instances(self) -> list[int]:
        p = self.p
        return [
            1 if p["cdn"] else 0,
            {"none": 0, "single": 1, "pair": 2}[p["balancer"]],
            p["app_servers"],
            1 if p["sessions"] == "central" else 0,
            1 if p["cache_items"] else 0,
            p["shards"] * (1 + p["replicas"]),
            p["workers"] if p["job_queue"] else 0,
        ]

    def _up(self) -> list[int]:
        instances = self._instances()
        up = list(instances)
        if instances[CDN] and self.cdn_down:
            up[CDN] = 0
        up[LB] = max(0, instances[LB] - self.lb_down)
        for k in self.down:
            up[LAYERS.index(k[0])] -= 1
        if instances[QUEUE]:
            up[QUEUE] = instances[QUEUE] - self.workers_down
        return up

    @staticmethod
    def _percentile(hist: dict[int, int], q: float) -> float:
        total = sum(hist.values())
        if not total:
            return 0.0
        need = q * total
        seen = 0
        for k in sorted(hist):
            seen += hist[k]
            if seen >= need:
                return _bin_value(k)
        return 0.0  # not reached: the bins add up to the total

    def metrics(self) -> dict[str, Any]:
        f = self._figures()
        d, span = f["delta"], f["span"]
        since = [a - b for a, b in zip(self.tot, self.base)]
        out: dict[str, Any] = {
            "rps": d[ARRIVED] / span,
            "response_ms": d[RESPONSE] / d[SERVED] * 1000.0 if d[SERVED] else 0.0,
            "response_p95_ms": f["p95"] * 1000.0,
            "mean_response_ms": since[RESPONSE] / since[SERVED] * 1000.0
            if since[SERVED]
            else 0.0,
            "errors_per_s": d[ERRORS] / span,
            "errors": round(since[ERRORS]),
            "lost_sessions": round(since[LOST]),
            "lost_sessions_per_s": d[LOST] / span,
            "hit_ratio": d[HITS] / d[READS] if d[READS] else 0.0,
            "job_wait_ms": d[JOB_WAIT] / d[JOBS_STARTED] * 1000.0
            if d[JOBS_STARTED]
            else 0.0,
            "jobs_waiting": len(self.queues[self.job_s]) if self.job_s >= 0 else 0,
            "jobs_done": round(since[JOBS_DONE]),
            "jobs_lost": round(since[JOBS_LOST]),
            "arrived": round(since[ARRIVED]),
            "served": round(since[SERVED]),
            "in_flight": self.inflight,
        }
        for i, name in enumerate(LAYERS):
            out[f"util_{name}"] = f["util"][i]
        out["util_db_masters"], out["util_db_replicas"] = f["db_util"]
        for i, name in enumerate(LAYERS):
            out[f"queue_{name}"] = f["queued"][i]
        for i, name in enumerate(LAYERS):
            out[f"share_ms_{name}"] = f["share"][i]
        for i, name in enumerate(LAYERS):
            out[f"cost_{name}"] = f["cost"][i]
        out["cost_month"] = sum(f["cost"])
        out["bottleneck"] = f["bottleneck"]
        return out

    def picture(self) -> dict[str, Any]:
        """Return each layer in request order (instances, those up, load, queue,
        share of the response, cost) and the headline figures, with the requests
        a second the CDN answered itself."""
        f = self._figures()
        d = f["delta"]
        layers = [
            {
                "name": name,
                "label": LABELS[i],
                "instances": f["instances"][i],
                "up": f["up"][i],
                "util": round(f["util"][i], 4),
                "queue": round(f["queued"][i], 2),
                "share_ms": round(f["share"][i], 3),
                "cost_month": round(f["cost"][i], 2),
                "on": name in f["present"],
            }
            for i, name in enumerate(LAYERS)
        ]
        return {
            "layers": layers,
            "bottleneck": f["bottleneck"],
            "rps": d[ARRIVED] / f["span"],
            "response_ms": d[RESPONSE] / d[SERVED] * 1000.0 if d[SERVED] else 0.0,
            "hit_ratio": d[HITS] / d[READS] if d[READS] else 0.0,
            "cdn_rps": d[EDGE] / f["span"],
        }

    # Theory --------------------------------------------------------------------

    def theory_key(self) -> tuple[Any, ...]:
        return (
            *super().theory_key(),
            tuple(sorted(self.down)),
            self.lb_down,
            self.workers_down,
            self.cdn_down,
            self.spike_on,
        )

    def compute_theory(self) -> TheoryFigures:
        """Predict the steady state as an open Jackson network (see the module)."""
        p = self.p
        present = self.present()
        out: dict[str, float | str | tuple[float, str]] = {}
        timed = ["response_ms", "mean_response_ms"] + [
            f"share_ms_{name}" for name in present
        ]
        util_names = [f"util_{name}" for name in present if name != "cdn"]
        util_names += ["util_db_masters"] + (
            ["util_db_replicas"] if p["replicas"] else []
        )
        steady_hit = (
            _che(p["keys"], p["zipf_s"], p["cache_items"]) if p["cache_items"] else 0.0
        )
        if "cache" in present:
            out["hit_ratio"] = 0.0 if ("cache",) in self.down else steady_hit
        if p["traffic"] != "steady" or self.spike_on:
            why = (
                "the traffic changes with time (a spike or a daily cycle): a "
                "Jackson network's steady state needs a steady Poisson rate"
            )
            return out | dict.fromkeys([*timed, *util_names, "job_wait_ms"], why)
        ms = 0.001
        lam = p["rate"]
        edge = p["cdn_share"] if p["cdn"] and not self.cdn_down else 0.0
        origin = lam * (1.0 - edge)
        w, sl = p["write_share"], p["slow_share"]
        a, b = p["app_ms"] * ms, p["slow_ms"] * ms
        groups: dict[str, list[Station]] = {}
        lb = None
        if p["balancer"] != "none" and self.lb_s >= 0:
            lb = Station(1)
            lb.add(origin, p["lb_ms"] * ms)
            groups["lb"] = [lb]
        flows = (
            origin
            if (p["balancer"] == "none" or lb is not None) and self.app_up
            else 0.0
        )
        n = len(self.app_up)
        apps: list[tuple[float, Station]] = []
        users = p["users"]
        for position in range(n):
            if p["sessions"] == "sticky":
                share = (users // n + (1 if position < users % n else 0)) / users
            else:
                share = 1.0 / n
            st = Station(p["app_threads"])
            if p["job_queue"]:
                st.add(flows * share, a)
            else:
                st.add(flows * share * (1.0 - sl), a)
                st.add(flows * share * sl, a + b)
            apps.append((share, st))
        groups["app"] = [st for _, st in apps]
        session = None
        if self.session_s >= 0:
            session = Station(1)
            session.add(flows, p["session_ms"] * ms)
            groups["session"] = [session]
        cache = None
        hit = 0.0
        if self.cache_s >= 0:
            cache = Station(1)
            cache.add(flows * (1.0 - w), p["cache_ms"] * ms)
            groups["cache"] = [cache]
            hit = steady_hit
        shards = p["shards"]
        nodes: dict[int, Station] = {}
        for s in range(len(self.key)):
            if self.layer[s] == DB:
                nodes[s] = Station(1)
        for k in range(shards):
            if self.masters[k] >= 0:
                nodes[self.masters[k]].add(flows * w / shards, p["db_write_ms"] * ms)
            for s in self.readers[k]:
                nodes[s].add(
                    flows * (1.0 - w) * (1.0 - hit) / shards / len(self.readers[k]),
                    p["db_read_ms"] * ms,
                )
        groups["db"] = [nodes[s] for s in nodes if self.key[s] not in self.down]
        workers = None
        if p["job_queue"]:
            workers = Station(p["workers"] - self.workers_down)
            workers.add(flows * sl, b)
        # Utilisation: the busiest group of each layer (database masters and
        # replicas apart).
        for name in present:
            if name == "cdn":
                continue
            if name == "queue":
                sts = [workers] if workers and workers.servers else []
            elif name == "db":
                sts = []
                for master, which in ((True, "masters"), (False, "replicas")):
                    members = [
                        nodes[s]
                        for s in nodes
                        if (self.key[s][2] == 0) == master
                        and self.key[s] not in self.down
                    ]
                    if members:
                        st = Station(
                            sum(x.servers for x in members),
                            work=sum(x.work for x in members),
                        )
                        sts.append(st)
                        out[f"util_db_{which}"] = st.utilization
                    elif master or p["replicas"]:
                        out[f"util_db_{which}"] = f"every database {which[:-1]} is down"
            else:
                sts = groups.get(name, [])
            if not sts:
                out[f"util_{name}"] = (
                    f"every {LABELS[LAYERS.index(name)].lower()} instance is down"
                )
                continue
            out[f"util_{name}"] = max(st.utilization for st in sts)
        if workers is not None:
            if not workers.servers:
                out["job_wait_ms"] = "every worker is down: jobs wait until one is back"
            elif workers.utilization >= 1.0:
                out["job_wait_ms"] = (
                    f"the workers' load is {workers.utilization:.2f}, at or above 1: "
                    "the job queue grows without limit, so no steady state exists"
                )
            else:
                out["job_wait_ms"] = workers.wait() * 1000.0
        # Any station on the way of a response at load 1 or more: no steady state.
        for name, sts in groups.items():
            worst = max((st.utilization for st in sts), default=0.0)
            if worst >= 1.0:
                why = (
                    f"the {LABELS[LAYERS.index(name)].lower()}' load is "
                    f"{worst:.2f}, at or above 1: its queue grows until requests "
                    "are dropped, so no steady state exists"
                )
                return out | dict.fromkeys(timed, why)

        def sojourn(st: Station | None) -> float:
            if st is None or st.rate <= 0.0:
                return 0.0
            return st.wait() + st.work / st.rate

        # Per layer, the time answered requests spend there, weighted by their
        # share of all answered requests.
        spent = [0.0] * len(LAYERS)
        answered = 0.0
        if edge:
            answered += edge
            spent[CDN] += edge * p["cdn_ms"] * ms
        if flows:
            up_time = [0.0] * len(LAYERS)
            up_time[LB] = sojourn(lb)
            up_time[APP] = sum(share * sojourn(st) for share, st in apps)
            up_time[SESSION] = sojourn(session)
            t_cache = sojourn(cache)
            part = 1.0 - edge
            for k in range(shards):
                weight = part / shards
                m = self.masters[k]
                readers = self.readers[k]
                t_read = (
                    sum(sojourn(nodes[s]) for s in readers) / len(readers)
                    if readers
                    else 0.0
                )
                # (share of requests, time at the cache, time at the database)
                classes = []
                if m >= 0:
                    classes.append((weight * w, 0.0, sojourn(nodes[m])))
                if cache is not None:
                    classes.append((weight * (1.0 - w) * hit, t_cache, 0.0))
                    if readers:
                        classes.append(
                            (weight * (1.0 - w) * (1.0 - hit), t_cache, t_read)
                        )
                elif readers:
                    classes.append((weight * (1.0 - w), 0.0, t_read))
                for share, at_cache, at_db in classes:
                    answered += share
                    for i in (LB, APP, SESSION):
                        spent[i] += share * up_time[i]
                    spent[CACHE] += share * at_cache
                    spent[DB] += share * at_db
        if answered <= 0.0:
            why = "every request fails: no path through the stack is up"
            return out | dict.fromkeys(timed, why)
        for name in present:
            out[f"share_ms_{name}"] = spent[LAYERS.index(name)] / answered * 1000.0
        total = sum(spent) / answered * 1000.0
        out["response_ms"] = out["mean_response_ms"] = total
        return out

    # Commands ------------------------------------------------------------------

    def _check_layer(self, command: str, layer: str) -> None:
        present = self.present()
        if layer not in present:
            raise CommandError(
                f"{command}.layer",
                f"{command}: layer must be one of the layers present: "
                f"{', '.join(present)}; got {layer}",
            )

    def _drop_station(self, s: int) -> int:
        """Lose everything station ``s`` holds; return the requests lost."""
        now = self.now
        self.qarea[s] += sum(now - e[0] for e in self.queues[s])
        lost = self._drop_waiting(self.queues[s])
        kept = []
        for entry in self.heap:
            if entry[2] == s:
                self.work[s] -= entry[0] - now
                lost += self._drop_one(entry[4])
            else:
                kept.append(entry)
        heapify(kept)
        self.heap = kept
        self.busy[s] = 0
        return lost

    def _station(self, key: tuple[Any, ...]) -> int:
        return self.key.index(key)

    @staticmethod
    def _what(key: tuple[Any, ...]) -> str:
        """Name the instance of station ``key`` in words."""
        if key[0] == "app":
            return f"App server {key[1] + 1}"
        if key[0] == "db":
            if key[2] == 0:
                return f"The database master of shard {key[1] + 1}"
            return f"Replica {key[2]} of shard {key[1] + 1}"
        return "The session store" if key[0] == "session" else "The cache"

    def on_fail(self, layer: str) -> list[Event]:
        self._check_layer("fail", layer)
        p = self.p
        lost = 0
        already = CommandError(
            "fail.layer", f"fail: every {layer} instance is already down"
        )
        if layer == "cdn":
            if self.cdn_down:
                raise already
            self.cdn_down = True
            what = "The CDN"
            self._redraw()
        elif layer == "lb":
            instances = 2 if p["balancer"] == "pair" else 1
            if self.lb_down >= instances:
                raise already
            self.lb_down += 1
            s = self.lb_s
            if self.lb_down == instances:
                lost = self._drop_station(s)
                self.cs[s] = 0
                what = "The balancer"
            else:
                what = "The active balancer (the standby takes over)"
        elif layer == "app":
            if not self.app_up:
                raise already
            key: tuple[Any, ...] = ("app", self.app_up[-1])
            what = self._what(key)
        elif layer in ("session", "cache"):
            key = (layer,)
            if key in self.down:
                raise already
            what = self._what(key)
        elif layer == "db":
            # Masters first: losing one is the fault the notes talk about.
            ups = [k for k in self.key if k[0] == "db" and k not in self.down]
            if not ups:
                raise already
            ups.sort(key=lambda k: (k[2] != 0, k[1], k[2]))
            key = ups[0]
            what = self._what(key)
        else:  # queue
            if self.workers_down >= p["workers"]:
                raise already
            self.workers_down += 1
            s = self.job_s
            self.cs[s] -= 1
            if self.busy[s] > self.cs[s]:
                # The job it was running was never acknowledged: the broker
                # gives it to the next worker free.
                entry = max(
                    (e for e in self.heap if e[2] == s), key=lambda e: (e[0], e[1])
                )
                self.heap.remove(entry)
                heapify(self.heap)
                self.work[s] -= entry[0] - self.now
                self.busy[s] -= 1
                self.queues[s].appendleft((self.now, None, p["slow_ms"] / 1000.0))
            what = "A worker"
        if layer in ("app", "session", "cache", "db"):
            s = self._station(key)
            lost = self._drop_station(s)
            self.down.add(key)
            self.cs[s] = 0
        self._route()
        return [
            {
                "type": "layer.failed",
                "t": self.now,
                "layer": layer,
                "what": what,
                "lost": lost,
            }
        ]

    def on_repair(self, layer: str) -> list[Event]:
        self._check_layer("repair", layer)
        p = self.p
        cold = False
        none = CommandError("repair.layer", f"repair: no {layer} instance is down")
        if layer == "cdn":
            if not self.cdn_down:
                raise none
            self.cdn_down = False
            what = "The CDN"
            self._redraw()
        elif layer == "lb":
            if not self.lb_down:
                raise none
            self.lb_down -= 1
            self.cs[self._station(("lb",))] = 1
            what = "The balancer"
        elif layer == "queue":
            if not self.workers_down:
                raise none
            self.workers_down -= 1
            self.cs[self.job_s] += 1
            self._start_waiting(self.job_s)
            what = "A worker"
        else:
            downs = sorted(
                (k for k in self.down if k[0] == layer),
                key=lambda k: (k[0] == "db" and k[2] != 0, k[1:]),
            )
            if not downs:
                raise none
            key = downs[0]
            self.down.discard(key)
            s = self._station(key)
            self.cs[s] = p["app_threads"] if layer == "app" else 1
            if layer == "cache":
                cold = True
                self.fill = 0
                self._update_hit()
            what = self._what(key)
        self._route()
        return [
            {
                "type": "layer.repaired",
                "t": self.now,
                "layer": layer,
                "what": what,
                "cold": cold,
            }
        ]

    def on_spike(self, factor: float, seconds: float) -> list[Event]:
        self.cmd_factor = factor
        self.cmd_end = self.now + seconds
        self.spike_on = True
        self._redraw()
        return [
            {
                "type": "traffic.spike",
                "t": self.now,
                "factor": factor,
                "seconds": seconds,
            }
        ]

    _STRUCTURE = frozenset(
        {
            "balancer",
            "app_servers",
            "app_threads",
            "sessions",
            "cache_items",
            "replicas",
            "shards",
            "job_queue",
            "workers",
            "queue_limit",
        }
    )

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        p = self.p
        if name in ("rate", "traffic", "day_s", "spike_factor", "cdn", "cdn_share"):
            self._redraw()
        elif name in ("keys", "zipf_s"):
            self._update_hit()
        elif name == "users":
            home = self.home
            if p["users"] < len(home):
                del home[p["users"] :]
            else:
                home.extend(array("i", [-1]) * (p["users"] - len(home)))
        if name not in self._STRUCTURE:
            return None
        if name == "workers":
            self.workers_down = min(self.workers_down, p["workers"])
        if name == "cache_items":
            if not old:
                self.fill = 0  # a new cache starts empty
            self._update_hit()
        if name == "queue_limit":
            lost = 0
            for s, q in enumerate(self.queues):
                if self.layer[s] != QUEUE:
                    while len(q) > p["queue_limit"]:
                        te, req, _ = q.pop()
                        self.qarea[s] += self.now - te
                        lost += self._drop_one(req)
            self._relayout()
            return [{"type": "request.failed", "count": lost}] if lost else None
        lost = self._relayout()
        return [{"type": "request.failed", "count": lost}] if lost else None
