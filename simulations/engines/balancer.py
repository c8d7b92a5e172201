"""A load balancer in front of app servers, with a choice of routing strategies."""

from __future__ import annotations

import math
import zlib
from array import array
from bisect import bisect_right
from collections import Counter, deque
from functools import lru_cache
from heapq import heapify, heappop, heappush
from typing import Any

from simulations.theory.erlang import mmc_mean_wait
from simulations.theory.queueing import (
    ekm1_mean_time,
    mg1_mean_time,
    mm1k_blocking,
    mm1k_mean_time,
    supermarket_mean_time,
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

STRATEGIES = (
    "round_robin",
    "random",
    "least_connections",
    "power_of_two",
    "least_cpu",
    "weighted_round_robin",
    "ip_hash",
    "dns_round_robin",
    "dedicated_pools",
)
(
    ROUND_ROBIN,
    RANDOM,
    LEAST_CONNECTIONS,
    POWER_OF_TWO,
    LEAST_CPU,
    WEIGHTED_ROUND_ROBIN,
    IP_HASH,
    DNS_ROUND_ROBIN,
    DEDICATED_POOLS,
) = range(len(STRATEGIES))
POOLS = ("web", "api")
MAX_SERVERS = 200  # servers in the pool at once
MAX_SERVER_IDS = 1000  # servers ever created in one run (ids are never reused)
RECENT_S = 3.0  # seconds behind the live "recent" figures
INF = math.inf
RESOLVERS_SHOWN = 3  # the busiest clients whose cached DNS answer the picture shows

# Latencies are kept in a histogram with 100 bins a decade (2.3 % wide) from
# 1 microsecond to 1e6 seconds: the p99 it gives is within about 1.2 % of the
# exact one, and the state stays small whatever the run length.
HIST_PER_DECADE = 100
HIST_LOW = 1e-6
HIST_BINS = 12 * HIST_PER_DECADE
HIST_SCALE = HIST_PER_DECADE / math.log(10.0)
HIST_OFFSET = -math.log(HIST_LOW) * HIST_SCALE


@lru_cache(maxsize=8)
def client_tables(clients: int, skew: float) -> tuple[array, array]:
    """Return the clients' cumulative activity (Zipf ``skew``) and their IP hashes.

    Client ``i`` has the stable address 10.x.y.z made from ``i``; its hash is the
    CRC-32 of that text, as a proxy hashing the client address would compute.
    """
    cdf = array("d", bytes(8 * clients))
    total = 0.0
    for i in range(clients):
        total += 1.0 / (i + 1) ** skew
        cdf[i] = total
    for i in range(clients):
        cdf[i] /= total
    cdf[clients - 1] = 1.0
    hashes = array("L", bytes(array("L").itemsize * clients))
    for i in range(clients):
        hashes[i] = zlib.crc32(_client_ip(i).encode())
    return cdf, hashes


@lru_cache(maxsize=16)
def hash_shares(clients: int, skew: float, servers: int) -> tuple[float, ...]:
    """Return the share of the traffic that ip_hash sends to each of ``servers``."""
    cdf, hashes = client_tables(clients, skew)
    shares = [0.0] * servers
    before = 0.0
    for edge, digest in zip(cdf, hashes):
        shares[digest % servers] += edge - before
        before = edge
    return tuple(shares)


def _client_ip(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _bin_latency(index: int) -> float:
    """Return the geometric middle of latency histogram bin ``index``."""
    return math.exp((index + 0.5 - HIST_OFFSET) / HIST_SCALE)


def _server_arg(help_text: str) -> Param:
    return Param(
        "server",
        "int",
        1,
        1,
        MAX_SERVER_IDS,
        help=help_text,
        label="Server number",
    )


class BalancerEngine(Engine):
    kind = "balancer"
    title = "Load balancer in front of app servers"
    description = (
        "Requests arrive at random and a load balancer sends each one to an app "
        "server. Each server works through its queue one request at a time and "
        "turns requests away when its queue is full. Compare the routing "
        "strategies, kill and add servers, and watch latency and balance."
    )
    params = (
        Param(
            "servers",
            "int",
            5,
            1,
            MAX_SERVERS,
            unit="servers",
            help="App servers in the pool at the start.",
            label="Servers",
        ),
        Param(
            "arrival_rate",
            "float",
            40.0,
            0.1,
            50_000.0,
            unit="req/s",
            step=1,
            help="Average requests per second, arriving at random (Poisson).",
            label="Arrival rate",
        ),
        Param(
            "service_rate",
            "float",
            10.0,
            0.1,
            10_000.0,
            unit="req/s",
            step=1,
            help="Requests per second a server of speed 1 finishes when busy "
            "(service times are exponential).",
            label="Service rate per server",
        ),
        Param(
            "speed_spread",
            "float",
            0.0,
            0.0,
            0.9,
            step=0.05,
            help="Spread of server speeds: speeds run evenly from 1 - spread to "
            "1 + spread across the pool (mean 1). Set again when this or the "
            "server count changes.",
            label="Speed spread",
        ),
        Param(
            "queue_limit",
            "int",
            100,
            1,
            10_000,
            unit="requests",
            help="Most requests a server holds, the one in service included; "
            "beyond it a request is dropped.",
            label="Queue limit per server",
        ),
        Param(
            "strategy",
            "choice",
            "round_robin",
            choices=STRATEGIES,
            help="How the balancer picks a server for each request.",
            label="Strategy",
        ),
        Param(
            "report_interval_s",
            "float",
            1.0,
            0.05,
            30.0,
            unit="s",
            step=0.05,
            help="least_cpu: how often servers report their CPU use over the last "
            "interval; between reports the balancer routes on old figures.",
            label="Load report interval",
        ),
        Param(
            "health_interval_s",
            "float",
            1.0,
            0.1,
            30.0,
            unit="s",
            step=0.1,
            help="How often the balancer (and the DNS) checks which servers are up.",
            label="Health check interval",
        ),
        Param(
            "clients",
            "int",
            200,
            1,
            10_000,
            unit="clients",
            help="ip_hash and dns_round_robin: distinct clients with stable addresses.",
            label="Clients",
        ),
        Param(
            "client_skew",
            "float",
            0.5,
            0.0,
            2.0,
            step=0.05,
            help="How unequal client activity is (Zipf s): 0 means every client "
            "sends as much; higher means a few clients (say a big office "
            "behind one address) send most requests.",
            label="Client skew",
        ),
        Param(
            "dns_ttl_s",
            "float",
            30.0,
            1.0,
            3600.0,
            unit="s",
            step=1,
            help="dns_round_robin: how long a client keeps the address it was given.",
            label="DNS TTL",
        ),
        Param(
            "api_share",
            "float",
            0.2,
            0.0,
            1.0,
            step=0.05,
            help="Share of requests that are API calls; the rest are web pages.",
            label="API share",
        ),
        Param(
            "api_cost",
            "float",
            1.0,
            0.1,
            20.0,
            step=0.1,
            help="Work of an API call relative to a web page.",
            label="API call cost",
        ),
        Param(
            "api_servers",
            "int",
            1,
            0,
            MAX_SERVERS,
            unit="servers",
            help="dedicated_pools: servers (the first ones) that serve only API "
            "calls; the others serve only web pages.",
            label="API pool size",
        ),
    )
    commands = (
        Command(
            "kill",
            "Kill server",
            "The server dies: requests in it are lost. The balancer notices at "
            "its next health check.",
            args=(_server_arg("The server to kill."),),
        ),
        Command(
            "revive",
            "Revive server",
            "A dead server comes back, empty; the balancer sends it traffic "
            "after its next health check.",
            args=(_server_arg("The dead server to bring back."),),
        ),
        Command(
            "add_server",
            "Add server",
            "A new server joins the pool at once.",
            args=(
                Param(
                    "pool",
                    "choice",
                    "web",
                    choices=POOLS,
                    help="dedicated_pools: which requests it serves.",
                ),
                Param(
                    "speed",
                    "float",
                    1.0,
                    0.1,
                    10.0,
                    step=0.1,
                    help="Its speed relative to a speed-1 server.",
                ),
            ),
        ),
        Command(
            "remove_server",
            "Remove server",
            "Take a server out of the pool: it gets no new requests from the "
            "balancer, finishes those it holds and leaves.",
            args=(_server_arg("The server to remove."),),
        ),
        Command(
            "set_strategy",
            "Change strategy",
            "Route with another strategy from now on.",
            args=(
                Param(
                    "strategy",
                    "choice",
                    "round_robin",
                    choices=STRATEGIES,
                    help="The new strategy.",
                ),
            ),
        ),
        Command(
            "set_arrival_rate",
            "Change arrival rate",
            "Change the request rate.",
            args=(
                Param(
                    "rate",
                    "float",
                    40.0,
                    0.1,
                    50_000.0,
                    unit="req/s",
                    help="The new arrival rate.",
                ),
            ),
        ),
    )
    event_types = (
        "balancer.completed",
        "balancer.dropped.full",
        "balancer.dropped.dead",
        "balancer.dropped.no_server",
        "balancer.dns_lookup",
        "balancer.kill",
        "balancer.revive",
        "balancer.add",
        "balancer.remove",
        "balancer.gone",
        "balancer.mark_down",
        "balancer.mark_up",
        "balancer.strategy",
        "balancer.rate",
    )
    narration = {
        "balancer.kill": "Server {server} was killed; {lost#request} in flight lost",
        "balancer.revive": "Server {server} is back up",
        "balancer.add": "Server {server} joined the {pool} pool",
        "balancer.remove": (
            "Server {server} is leaving the pool; {draining#request} still to finish"
        ),
        "balancer.gone": "Server {server} has left the pool",
        "balancer.mark_down": "The health check marked server {server} down",
        "balancer.mark_up": "The health check marked server {server} up again",
        "balancer.strategy": "The balancer now uses {strategy}",
        "balancer.rate": "Traffic is now {rate} requests a second",
    }
    metric_specs = (
        Metric("arrived", "Arrived", "requests"),
        Metric("completed", "Completed", "requests"),
        Metric(
            "dropped",
            "Dropped",
            "requests",
            help="Turned away by a full queue, sent to a dead server, lost in a "
            "server that died, or with no server to go to.",
        ),
        Metric("drop_ratio", "Drop ratio", help="Dropped over arrived."),
        Metric(
            "mean_latency_s",
            "Mean latency",
            "s",
            help="Mean time in system of completed requests.",
        ),
        Metric(
            "p99_latency_s",
            "p99 latency",
            "s",
            help="99th percentile of the time in system (histogram, 2.3 % bins).",
        ),
        Metric(
            "max_utilization",
            "Busiest server's utilization",
            help="Largest share of time a server spent working.",
        ),
        Metric(
            "imbalance",
            "Imbalance",
            help="Busiest live server's load over the mean load of the live "
            "servers; 1 is perfect balance. Live: running and in the pool (killed "
            "and removed servers are left out), each server's load being the "
            "requests it held averaged over the time it was up.",
        ),
        Metric("throughput_per_s", "Throughput", "req/s"),
        Metric(
            "mean_in_system",
            "Requests in system",
            "requests",
            help="Time-average requests held by all servers together.",
        ),
        Metric("dropped_full", "Dropped: queue full", "requests"),
        Metric(
            "dropped_dead",
            "Dropped: dead server",
            "requests",
            help="Sent to a server that had died or left (stale health view or "
            "cached DNS answer).",
        ),
        Metric("dropped_killed", "Dropped: lost in a kill", "requests"),
        Metric("dropped_no_server", "Dropped: no server", "requests"),
        Metric("dns_lookups", "DNS lookups", "lookups"),
        Metric("in_flight", "In flight", "requests", summary=False),
        Metric("servers_in_rotation", "Servers in rotation", "servers", summary=False),
        Metric("server_names", "Servers", summary=False),
        Metric("server_load", "Requests in each server", "requests", summary=False),
        Metric(
            "server_load_recent",
            "Load per server (last 3 s)",
            "requests",
            summary=False,
        ),
        Metric("server_utilization", "Utilization per server", summary=False),
        Metric("server_up", "Server up (1) or dead (0)", summary=False),
        Metric(
            "imbalance_recent",
            "Imbalance (last 3 s)",
            help="As imbalance, over the last 3 s: live servers only, each over "
            "the time it was up.",
            summary=False,
        ),
        Metric("latency_s_recent", "Mean latency (last 3 s)", "s", summary=False),
        Metric(
            "completed_per_s_recent", "Completed (last 3 s)", "req/s", summary=False
        ),
        Metric("dropped_per_s_recent", "Dropped (last 3 s)", "req/s", summary=False),
        Metric(
            "clients_on_dead_server",
            "Clients whose cached DNS answer is a dead server",
            "clients",
            summary=False,
        ),
        Metric("strategy", "Strategy", summary=False),
    )
    derived = ("_client_cdf", "_client_hash")
    # Each frame names the one its strategy uses (``theory_models`` in the frame).
    theory_models = {
        "mean_latency_s": "queueing theory for the strategy",
        "throughput_per_s": "queueing theory for the strategy",
    }

    @classmethod
    def check_params(cls, values: dict[str, Any]) -> None:
        if values["api_servers"] > values["servers"]:
            raise ParamError(
                "api_servers",
                f"api_servers must be from 0 to servers ({values['servers']}); "
                f"got {values['api_servers']}",
            )

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A snapshot from before the per-server routed counts carries on from 0.
        state.setdefault("routed", [0] * len(state["alive"]))
        super().__setstate__(state)

    def rebuild(self) -> None:
        self._client_cdf, self._client_hash = client_tables(
            self.p["clients"], self.p["client_skew"]
        )

    # World ------------------------------------------------------------------

    def setup(self) -> None:
        # Per server, indexed by id - 1 (ids are never reused).
        self.alive: list[bool] = []  # running (not killed)
        self.removed: list[bool] = []  # taken out by the operator (draining or gone)
        self.gone: list[bool] = []  # removed and empty, or killed after removal
        self.accepting: list[bool] = []  # alive and not gone: a request sent here stays
        self.pool: list[int] = []
        self.speed: list[float] = []
        self.mu: list[float] = []
        self.count: list[int] = []
        self.queues: list[deque[tuple[float, float]]] = []
        self.done_at: list[float] = []
        self.busy: list[float] = []  # seconds of work started (lifetime)
        self.area: list[float] = []  # integral of requests held over time (lifetime)
        self.last: list[float] = []  # when ``area`` was brought up to date
        self.cpu: list[float] = []  # last CPU share reported (least_cpu)
        self.busy_reported: list[float] = []
        self.busy0: list[float] = []
        self.area0: list[float] = []
        self.born: list[float] = []
        # Seconds each server was up (running), up to its last kill, and when it
        # last came up: loads are averaged over the time a server was up.
        self.uptime: list[float] = []
        self.up_since: list[float] = []
        self.up0: list[float] = []
        self.view: list[int] = []  # servers the balancer believes are up
        self.pool_views: list[list[int]] = [[], []]
        self.wrr: list[int] = []
        self.routed: list[int] = []  # requests the balancer (or DNS) sent each one
        self.heap: list[tuple[float, int, int]] = []
        self.seq = 0
        self.rr = 0
        self.wrr_next = 0
        self.dns_next = 0
        clients = self.p["clients"]
        self.dns_server = [-1] * clients
        self.dns_expiry = [-INF] * clients
        for _ in range(self.p["servers"]):
            self._new_server("web", 1.0)
        self._apply_spread()
        self._assign_pools()
        self.view = [s for s in range(len(self.alive)) if self.accepting[s]]
        self._rebuild_views()
        self.next_arrival = self.rng.expovariate(self.p["arrival_rate"])
        self.next_health = self.p["health_interval_s"]
        self.next_report = self.p["report_interval_s"]
        self.last_report = 0.0
        self.arrived_total = self.completed_total = 0
        self.dropped_full_total = self.dropped_dead_total = 0
        self.dropped_killed_total = self.dropped_none_total = 0
        self.dns_lookups_total = 0
        self.window = Window(span=RECENT_S)
        # (time, areas, uptimes) of every server, a slice apart over the last 3 s.
        self.area_marks: deque[tuple[float, list[float], list[float]]] = deque()
        self.reset_stats()

    def _new_server(self, pool: str, speed: float) -> int:
        s = len(self.alive)
        self.alive.append(True)
        self.removed.append(False)
        self.gone.append(False)
        self.accepting.append(True)
        self.pool.append(POOLS.index(pool))
        self.speed.append(speed)
        self.mu.append(self.p["service_rate"] * speed)
        self.count.append(0)
        self.queues.append(deque())
        self.done_at.append(self.now)
        self.busy.append(0.0)
        self.area.append(0.0)
        self.last.append(self.now)
        self.cpu.append(0.0)
        self.busy_reported.append(0.0)
        self.busy0.append(0.0)
        self.area0.append(0.0)
        self.born.append(self.now)
        self.uptime.append(0.0)
        self.up_since.append(self.now)
        self.up0.append(0.0)
        self.routed.append(0)
        return s

    def _in_pool(self) -> list[int]:
        """Return the servers the operator has not removed, in id order."""
        return [s for s in range(len(self.alive)) if not self.removed[s]]

    def _present(self) -> list[int]:
        """Return the servers that still exist (not gone), in id order."""
        return [s for s in range(len(self.alive)) if not self.gone[s]]

    def _apply_spread(self) -> None:
        servers = self._in_pool()
        spread = self.p["speed_spread"]
        n = len(servers)
        for k, s in enumerate(servers):
            self.speed[s] = 1.0 if n == 1 else 1.0 - spread + 2.0 * spread * k / (n - 1)
            self.mu[s] = self.p["service_rate"] * self.speed[s]

    def _assign_pools(self) -> None:
        for k, s in enumerate(self._in_pool()):
            self.pool[s] = 1 if k < self.p["api_servers"] else 0

    def _rebuild_views(self) -> None:
        """Derive the pool views and the weighted schedule from ``view`` (in place)."""
        view = self.view
        for pool, members in enumerate(self.pool_views):
            members[:] = [s for s in view if self.pool[s] == pool]
        # Interleaved weighted round robin: server s gets weight w (its speed in
        # tenths) and its k-th turn at virtual time (k + 0.5) / w, so turns spread
        # evenly over each cycle instead of coming in bursts.
        slots = []
        for s in view:
            w = max(1, round(self.speed[s] * 10))
            slots += [((k + 0.5) / w, s) for k in range(w)]
        slots.sort()
        self.wrr[:] = [s for _, s in slots]
        if self.wrr_next >= len(self.wrr):
            self.wrr_next = 0

    def _set_view(self, servers: list[int]) -> None:
        self.view[:] = servers
        self._rebuild_views()

    # Running ----------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        p = self.p
        rng = self.rng
        rand = rng.random
        expo = rng.expovariate
        log = math.log
        push = heappush
        pop = heappop
        heap = self.heap
        count = self.count
        cget = count.__getitem__
        queues = self.queues
        mu = self.mu
        busy = self.busy
        done_at = self.done_at
        area = self.area
        last = self.last
        accepting = self.accepting
        removed = self.removed
        view = self.view
        pool_views = self.pool_views
        wrr = self.wrr
        cpu_get = self.cpu.__getitem__
        cdf = self._client_cdf
        hashes = self._client_hash
        last_client = len(cdf) - 1
        dns_server = self.dns_server
        dns_expiry = self.dns_expiry
        hist = self.hist
        routed = self.routed
        strategy = STRATEGIES.index(p["strategy"])
        rate = p["arrival_rate"]
        limit = p["queue_limit"]
        ttl = p["dns_ttl_s"]
        api_share = p["api_share"]
        api_cost = p["api_cost"]
        seq = self.seq
        rr = self.rr
        wrr_next = self.wrr_next
        dns_next = self.dns_next
        ta = self.next_arrival
        tn = min(self.next_health, self.next_report)
        arrived = completed = full = dead = none = lookups = controls = 0
        latency = 0.0
        events: list[Event] = []
        while True:
            tc = heap[0][0] if heap else INF
            if ta <= tc and ta <= tn:
                if ta > end:
                    break
                t = ta
                ta = t + expo(rate)
                arrived += 1
                api = 0
                if api_share > 0.0 and rand() < api_share:
                    api = 1
                    work = expo(1.0) * api_cost
                else:
                    work = expo(1.0)
                nv = len(view)
                s = -1
                if strategy == ROUND_ROBIN:
                    if nv:
                        if rr >= nv:
                            rr = 0
                        s = view[rr]
                        rr += 1
                elif strategy == RANDOM:
                    if nv:
                        s = view[int(rand() * nv)]
                elif strategy == LEAST_CONNECTIONS:
                    if nv:
                        s = min(view, key=cget)
                        # Rotate so that ties go round the servers in turn.
                        view.append(view.pop(0))
                elif strategy == POWER_OF_TWO:
                    if nv > 1:
                        i = int(rand() * nv)
                        j = int(rand() * (nv - 1))
                        if j >= i:
                            j += 1
                        a = view[i]
                        b = view[j]
                        s = a if count[a] <= count[b] else b
                    elif nv:
                        s = view[0]
                elif strategy == LEAST_CPU:
                    if nv:
                        s = min(view, key=cpu_get)
                        view.append(view.pop(0))
                elif strategy == WEIGHTED_ROUND_ROBIN:
                    if wrr:
                        if wrr_next >= len(wrr):
                            wrr_next = 0
                        s = wrr[wrr_next]
                        wrr_next += 1
                elif strategy == IP_HASH:
                    c = bisect_right(cdf, rand())
                    if c > last_client:
                        c = last_client
                    if nv:
                        s = view[hashes[c] % nv]
                elif strategy == DNS_ROUND_ROBIN:
                    c = bisect_right(cdf, rand())
                    if c > last_client:
                        c = last_client
                    if t >= dns_expiry[c]:
                        # The cached answer ran out: ask DNS, which rotates through
                        # the servers that passed its last health check.
                        lookups += 1
                        if nv:
                            if dns_next >= nv:
                                dns_next = 0
                            dns_server[c] = view[dns_next]
                            dns_next += 1
                            dns_expiry[c] = t + ttl
                        else:
                            dns_server[c] = -1
                    s = dns_server[c]
                else:  # DEDICATED_POOLS: least connections inside the request's pool
                    members = pool_views[api]
                    if members:
                        s = min(members, key=cget)
                        members.append(members.pop(0))
                if s < 0:
                    none += 1
                elif not accepting[s]:
                    routed[s] += 1
                    dead += 1
                else:
                    routed[s] += 1
                    n = count[s]
                    if n >= limit:
                        full += 1
                    else:
                        area[s] += n * (t - last[s])
                        last[s] = t
                        count[s] = n + 1
                        queues[s].append((t, work))
                        if not n:
                            d = work / mu[s]
                            busy[s] += d
                            done_at[s] = t + d
                            push(heap, (t + d, seq, s))
                            seq += 1
            elif tc <= tn:
                if tc > end:
                    break
                t = tc
                s = pop(heap)[2]
                n = count[s]
                area[s] += n * (t - last[s])
                last[s] = t
                count[s] = n - 1
                q = queues[s]
                lat = t - q.popleft()[0]
                latency += lat
                completed += 1
                k = int(log(lat + 1e-12) * HIST_SCALE + HIST_OFFSET)
                if k < 0:
                    k = 0
                elif k >= HIST_BINS:
                    k = HIST_BINS - 1
                hist[k] += 1
                if n > 1:
                    d = q[0][1] / mu[s]
                    busy[s] += d
                    done_at[s] = t + d
                    push(heap, (t + d, seq, s))
                    seq += 1
                elif removed[s]:
                    events.append(self._leave(s, t))
            else:
                if tn > end:
                    break
                controls += 1
                events += self._control(tn)
                tn = min(self.next_health, self.next_report)
        self.next_arrival = ta
        self.seq = seq
        self.rr = rr
        self.wrr_next = wrr_next
        self.dns_next = dns_next
        self.processed += arrived + completed + controls
        self.arrived_total += arrived
        self.completed_total += completed
        self.dropped_full_total += full
        self.dropped_dead_total += dead
        self.dropped_none_total += none
        self.dns_lookups_total += lookups
        self.latency_sum += latency
        self.window.add(
            self.now, completed=completed, dropped=full + dead + none, latency=latency
        )
        self._mark_area(end)
        for name, amount in (
            ("completed", completed),
            ("dropped.full", full),
            ("dropped.dead", dead),
            ("dropped.no_server", none),
            ("dns_lookup", lookups),
        ):
            if amount:
                events.append({"type": f"balancer.{name}", "count": amount})
        return events

    def _control(self, t: float) -> list[Event]:
        """Carry out the health check and load report due at ``t``."""
        events: list[Event] = []
        if self.next_health <= t:
            self.next_health = t + self.p["health_interval_s"]
            healthy = [
                s
                for s in range(len(self.alive))
                if self.accepting[s] and not self.removed[s]
            ]
            seen = set(self.view)
            if set(healthy) != seen:
                for s in sorted(seen - set(healthy)):
                    events.append(
                        {"type": "balancer.mark_down", "t": t, "server": s + 1}
                    )
                for s in sorted(set(healthy) - seen):
                    events.append({"type": "balancer.mark_up", "t": t, "server": s + 1})
                self._set_view(healthy)
        if self.next_report <= t:
            self.next_report = t + self.p["report_interval_s"]
            span = max(t - self.last_report, 1e-9)
            for s in range(len(self.alive)):
                work = self._busy_at(s, t)
                self.cpu[s] = (work - self.busy_reported[s]) / span
                self.busy_reported[s] = work
            self.last_report = t
        return events

    def _busy_at(self, s: int, t: float) -> float:
        """Return server ``s``'s seconds of work done up to ``t`` (lifetime)."""
        if self.count[s]:
            return self.busy[s] - max(self.done_at[s] - t, 0.0)
        return self.busy[s]

    def _area_at(self, s: int, t: float) -> float:
        return self.area[s] + self.count[s] * (t - self.last[s])

    def _up_at(self, s: int, t: float) -> float:
        """Return server ``s``'s seconds up (running) up to ``t`` (lifetime)."""
        if self.alive[s]:
            return self.uptime[s] + t - self.up_since[s]
        return self.uptime[s]

    def _leave(self, s: int, t: float) -> Event:
        """Server ``s`` (removed, now empty) leaves the world."""
        self.gone[s] = True
        self.accepting[s] = False
        return {"type": "balancer.gone", "t": t, "server": s + 1}

    def _mark_area(self, t: float) -> None:
        marks = self.area_marks
        servers = range(len(self.alive))
        marks.append(
            (
                t,
                [self._area_at(s, t) for s in servers],
                [self._up_at(s, t) for s in servers],
            )
        )
        while len(marks) > 1 and marks[1][0] <= t - RECENT_S:
            marks.popleft()

    # Figures ----------------------------------------------------------------

    def reset_stats(self) -> None:
        now = self.now
        self.since = now
        self.arrived0 = self.arrived_total
        self.completed0 = self.completed_total
        self.dropped_full0 = self.dropped_full_total
        self.dropped_dead0 = self.dropped_dead_total
        self.dropped_killed0 = self.dropped_killed_total
        self.dropped_none0 = self.dropped_none_total
        self.dns_lookups0 = self.dns_lookups_total
        self.in_flight0 = sum(self.count)
        self.latency_sum = 0.0
        self.hist = [0] * HIST_BINS
        for s in range(len(self.alive)):
            self.busy0[s] = self._busy_at(s, now)
            self.area0[s] = self._area_at(s, now)
            self.up0[s] = self._up_at(s, now)

    def _p99(self) -> float:
        total = sum(self.hist)
        if not total:
            return 0.0
        rank = math.ceil(0.99 * total)
        seen = 0
        for k, n in enumerate(self.hist):
            seen += n
            if seen >= rank:
                return _bin_latency(k)
        return _bin_latency(HIST_BINS - 1)

    def metrics(self) -> dict[str, Any]:
        now = self.now
        elapsed = max(now - self.since, 1e-9)
        arrived = self.arrived_total - self.arrived0
        completed = self.completed_total - self.completed0
        full = self.dropped_full_total - self.dropped_full0
        dead = self.dropped_dead_total - self.dropped_dead0
        killed = self.dropped_killed_total - self.dropped_killed0
        none = self.dropped_none_total - self.dropped_none0
        dropped = full + dead + killed + none
        present = self._present()
        utilization = []
        for s in present:
            span = max(now - max(self.since, self.born[s]), 1e-9)
            utilization.append((self._busy_at(s, now) - self.busy0[s]) / span)
        total_area = sum(
            self._area_at(s, now) - self.area0[s] for s in range(len(self.alive))
        )
        t0, marked, marked_up = self.area_marks[0] if self.area_marks else (now, [], [])
        recent_span = max(now - t0, 1e-9)
        recent = [
            (self._area_at(s, now) - (marked[s] if s < len(marked) else 0.0))
            / recent_span
            for s in present
        ]
        # Imbalance among the live servers only: a killed or removed one holds
        # nothing and would pull the mean down. Each load is averaged over the
        # time its server was up, so one revived after a kill is not either.
        live_loads = []
        live_recent = []
        for s in present:
            if not self.alive[s] or self.removed[s]:
                continue
            up = self._up_at(s, now)
            if up > self.up0[s]:
                live_loads.append(
                    (self._area_at(s, now) - self.area0[s]) / (up - self.up0[s])
                )
            up_then = marked_up[s] if s < len(marked_up) else 0.0
            if up > up_then:
                area_then = marked[s] if s < len(marked) else 0.0
                live_recent.append((self._area_at(s, now) - area_then) / (up - up_then))
        w = self.window
        recent_done = w.total("completed", now)
        span = w.seconds(now)
        return {
            "arrived": arrived,
            "completed": completed,
            "dropped": dropped,
            "drop_ratio": dropped / arrived if arrived else 0.0,
            "mean_latency_s": self.latency_sum / completed if completed else 0.0,
            "p99_latency_s": self._p99(),
            "max_utilization": max(utilization, default=0.0),
            "imbalance": _imbalance(live_loads),
            "throughput_per_s": completed / elapsed,
            "mean_in_system": total_area / elapsed,
            "dropped_full": full,
            "dropped_dead": dead,
            "dropped_killed": killed,
            "dropped_no_server": none,
            "dns_lookups": self.dns_lookups_total - self.dns_lookups0,
            "in_flight": sum(self.count),
            "servers_in_rotation": len(self.view),
            "server_names": [f"s{s + 1}" for s in present],
            "server_load": [self.count[s] for s in present],
            "server_load_recent": recent,
            "server_utilization": utilization,
            "server_up": [1 if self.alive[s] else 0 for s in present],
            "imbalance_recent": _imbalance(live_recent),
            "latency_s_recent": w.total("latency", now) / recent_done
            if recent_done
            else 0.0,
            "completed_per_s_recent": recent_done / span,
            "dropped_per_s_recent": w.total("dropped", now) / span,
            "clients_on_dead_server": self._clients_on_dead(),
            "strategy": self.p["strategy"],
        }

    def _clients_on_dead(self) -> int:
        now = self.now
        accepting = self.accepting
        return sum(
            1
            for s, expiry in zip(self.dns_server, self.dns_expiry)
            if s >= 0 and expiry > now and not accepting[s]
        )

    # Picture and theory -----------------------------------------------------

    def picture(self) -> dict[str, Any]:
        """Return, per server of ``server_names``, what the diagram needs besides
        the metrics: the requests sent to it so far (the browser turns the change
        into dots), whether the balancer routes to it and whether it is draining;
        the pools under dedicated_pools; the DNS answers cached under
        dns_round_robin (the busiest clients' answers, and how many clients hold
        each server).
        """
        present = self._present()
        in_view = set(self.view)
        out: dict[str, Any] = {
            "routed": [self.routed[s] for s in present],
            "in_rotation": [1 if s in in_view else 0 for s in present],
            "draining": [1 if self.removed[s] else 0 for s in present],
        }
        strategy = self.p["strategy"]
        if strategy == "dedicated_pools":
            out["pool"] = [POOLS[self.pool[s]] for s in present]
        if strategy == "dns_round_robin":
            now = self.now
            cdf = self._client_cdf
            resolvers = []
            for c in range(min(RESOLVERS_SHOWN, len(self.dns_server))):
                s = self.dns_server[c]
                left = self.dns_expiry[c] - now
                cached = s >= 0 and left > 0
                resolvers.append(
                    {
                        "client": _client_ip(c),
                        "share": round(cdf[c] - (cdf[c - 1] if c else 0.0), 4),
                        "server": f"s{s + 1}" if cached else None,
                        "ttl_s": round(left, 1) if cached else 0.0,
                    }
                )
            holders = Counter(
                s for s, expiry in zip(self.dns_server, self.dns_expiry) if expiry > now
            )
            out["resolvers"] = resolvers
            out["cached"] = [holders[s] for s in present]
        return out

    def theory_key(self) -> tuple[Any, ...]:
        # The prediction is for the servers the balancer routes to, in its order
        # (ip_hash maps a client by its position in that list).
        return (*super().theory_key(), tuple(self.mu[s] for s in self.view))

    def compute_theory(self) -> TheoryFigures:
        """Predict the steady-state mean latency and throughput of the servers in
        rotation, for the strategies with a standard model (see ``theory_models``).
        """
        p = self.p
        strategy = p["strategy"]
        names = ("mean_latency_s", "throughput_per_s")
        mus = [self.mu[s] for s in self.view]
        if not mus:
            return dict.fromkeys(names, "no server is in rotation")
        lam = p["arrival_rate"]
        share, cost = p["api_share"], p["api_cost"]
        # Mean and second moment of a request's work (a web page's is Exp(1)).
        work1 = 1.0 + share * (cost - 1.0)
        work2 = 2.0 * (1.0 - share + share * cost * cost)
        exponential = cost == 1.0 or share in (0.0, 1.0)
        n = len(mus)
        if strategy == "ip_hash":
            shares = hash_shares(p["clients"], p["client_skew"], n)
            rates = [lam * share for share in shares]
        else:
            rates = [lam / n] * n
        loads = [r * work1 / m for r, m in zip(rates, mus)]
        load = lam * work1 / sum(mus)
        if max(loads) >= 1.0:
            worst = (
                ""
                if max(loads) - load < 0.005
                else f" (the busiest server's {max(loads):.2f})"
            )
            return dict.fromkeys(
                names,
                f"load is {load:.2f}{worst}, at or above 1: queues grow until "
                "full and the excess is dropped; these models hold only below 1",
            )
        limit = p["queue_limit"]
        if strategy in ("random", "ip_hash"):
            # Poisson arrivals split at random (or by a fixed client hash) stay
            # Poisson: each server is an M/M/1/K queue (M/G/1 if API calls cost
            # more or less than pages, the queue limit then left out).
            done = time = 0.0
            for r, m in zip(rates, mus):
                if r == 0.0:
                    continue
                if exponential:
                    rate = m / work1
                    kept = r * (1.0 - mm1k_blocking(r, rate, limit))
                    t = mm1k_mean_time(r, rate, limit)
                else:
                    kept = r
                    t = mg1_mean_time(r, work1 / m, work2 / (m * m))
                done += kept
                time += kept * t
            model = "M/M/1/K per server" if exponential else "M/G/1 per server"
            return {
                "mean_latency_s": (time / done, model),
                "throughput_per_s": (done, model),
            }
        if strategy not in ("round_robin", "power_of_two", "least_connections"):
            return dict.fromkeys(
                names, f"no standard closed form for {strategy.replace('_', ' ')}"
            )
        label = strategy.replace("_", " ")
        if not exponential:
            return dict.fromkeys(
                names,
                f"the {label} model needs exponential service times, and API "
                f"calls cost {cost:g} times a page",
            )
        rate = mus[0] / work1
        if max(mus) - min(mus) > 1e-9 * max(mus):
            return dict.fromkeys(names, f"the {label} model needs equal servers")
        if strategy == "least_connections":
            shared = mmc_mean_wait(lam, rate, n) + 1.0 / rate
            return {
                "mean_latency_s": "least connections (join the shortest queue) has "
                f"no closed form; one shared queue (M/M/{n}) would give "
                f"{shared:.3g} s, a lower bound",
                "throughput_per_s": "least connections (join the shortest queue) "
                "has no closed form",
            }
        # Both models below have unbounded queues: an M/M/1 queue at the same load
        # fills one of this limit more often than the random split would (rho^K).
        if load**limit > 1e-3:
            return dict.fromkeys(
                names,
                f"queues of at most {limit} fill too often at load {load:.2f} "
                "for a model whose queues have no limit",
            )
        if strategy == "round_robin":
            # Every n-th request of a Poisson stream: Erlang-n gaps (E_n/M/1).
            mean = ekm1_mean_time(n, lam / n, rate)
            model = f"E_{n}/M/1 per server"
        elif n > 1:
            mean = supermarket_mean_time(lam / n, rate, 2)
            model = "the supermarket model (Mitzenmacher)"
        else:
            mean = 1.0 / (rate - lam)
            model = "M/M/1"
        return {"mean_latency_s": (mean, model), "throughput_per_s": (lam, model)}

    # Commands ---------------------------------------------------------------

    def _target(self, command: str, server: int, ok: list[int], what: str) -> int:
        s = server - 1
        if s not in ok:
            allowed = (
                ": one of " + ", ".join(str(i + 1) for i in ok)
                if ok
                else ", and there is none at the moment"
            )
            raise CommandError(
                f"{command}.server",
                f"{command}: server must be {what}{allowed}; got {server}",
            )
        return s

    def on_kill(self, server: int) -> list[Event]:
        ok = [s for s in self._present() if self.alive[s]]
        s = self._target("kill", server, ok, "a running server")
        now = self.now
        lost = self.count[s]
        self.area[s] = self._area_at(s, now)
        self.last[s] = now
        if lost:
            self.busy[s] -= max(self.done_at[s] - now, 0.0)
            self.heap = [e for e in self.heap if e[2] != s]
            heapify(self.heap)
        self.count[s] = 0
        self.queues[s].clear()
        self.dropped_killed_total += lost
        self.uptime[s] = self._up_at(s, now)
        self.alive[s] = False
        self.accepting[s] = False
        events: list[Event] = [
            {"type": "balancer.kill", "t": now, "server": server, "lost": lost}
        ]
        if self.removed[s]:
            events.append(self._leave(s, now))
        return events

    def on_revive(self, server: int) -> list[Event]:
        ok = [s for s in self._present() if not self.alive[s]]
        s = self._target("revive", server, ok, "a dead server")
        self.alive[s] = True
        self.accepting[s] = True
        self.last[s] = self.now
        self.up_since[s] = self.now
        return [{"type": "balancer.revive", "t": self.now, "server": server}]

    def on_add_server(self, pool: str, speed: float) -> list[Event]:
        if len(self._in_pool()) >= MAX_SERVERS or len(self.alive) >= MAX_SERVER_IDS:
            raise CommandError(
                "add_server",
                f"add_server: the pool is full (at most {MAX_SERVERS} servers, "
                f"{MAX_SERVER_IDS} created in a run)",
            )
        s = self._new_server(pool, speed)
        self._set_view(self.view + [s])
        return [
            {
                "type": "balancer.add",
                "t": self.now,
                "server": s + 1,
                "pool": pool,
                "speed": speed,
            }
        ]

    def on_remove_server(self, server: int) -> list[Event]:
        s = self._target(
            "remove_server", server, self._in_pool(), "a server in the pool"
        )
        self.removed[s] = True
        if s in self.view:
            self._set_view([v for v in self.view if v != s])
        events: list[Event] = [
            {
                "type": "balancer.remove",
                "t": self.now,
                "server": server,
                "draining": self.count[s],
            }
        ]
        if not self.count[s]:
            events.append(self._leave(s, self.now))
        return events

    def on_set_strategy(self, strategy: str) -> list[Event]:
        return self.set_param("strategy", strategy)

    def on_set_arrival_rate(self, rate: float) -> list[Event]:
        return self.set_param("arrival_rate", rate)

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        now = self.now
        value = self.p[name]
        if name == "arrival_rate":
            # Poisson arrivals are memoryless: drawing the next one afresh from
            # now at the new rate is exact.
            self.next_arrival = now + self.rng.expovariate(value)
            return [{"type": "balancer.rate", "t": now, "rate": value}]
        if name == "strategy":
            self.rr = self.wrr_next = self.dns_next = 0
            if value == "dns_round_robin":
                self.dns_expiry = [-INF] * self.p["clients"]
            return [{"type": "balancer.strategy", "t": now, "strategy": value}]
        if name == "servers":
            return self._resize_pool(value)
        if name == "speed_spread":
            self._apply_spread()
            self._rebuild_views()
        elif name == "service_rate":
            for s in range(len(self.mu)):
                self.mu[s] = value * self.speed[s]
        elif name == "queue_limit":
            self._trim_queues(value)
        elif name == "api_servers":
            self._assign_pools()
            self._rebuild_views()
        elif name == "clients":
            extra = value - len(self.dns_server)
            if extra > 0:
                self.dns_server += [-1] * extra
                self.dns_expiry += [-INF] * extra
            else:
                del self.dns_server[value:]
                del self.dns_expiry[value:]
        elif name == "report_interval_s":
            self.next_report = now + value
        elif name == "health_interval_s":
            self.next_health = now + value
        return None

    def _resize_pool(self, target: int) -> list[Event]:
        events: list[Event] = []
        pool = self._in_pool()
        while len(pool) < target:
            events += self.on_add_server("web", 1.0)
            pool = self._in_pool()
        for s in reversed(pool[target:]):
            events += self.on_remove_server(s + 1)
        self._apply_spread()
        self._assign_pools()
        self._rebuild_views()
        return events

    def _trim_queues(self, limit: int) -> None:
        now = self.now
        for s, q in enumerate(self.queues):
            excess = len(q) - limit
            if excess > 0:
                self.area[s] = self._area_at(s, now)
                self.last[s] = now
                for _ in range(excess):
                    q.pop()
                self.count[s] = len(q)
                self.dropped_full_total += excess


def _imbalance(loads: list[float]) -> float:
    """Return the largest load over the mean load (0 when nothing is loaded)."""
    if not loads:
        return 0.0
    mean = sum(loads) / len(loads)
    return max(loads) / mean if mean > 0 else 0.0
