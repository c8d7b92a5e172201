"""Database replication: a master ships its writes to replicas that apply them in order.

Every write is committed on a master and sent to each replica, which receives it
after the network delay and applies the writes one at a time, in order, each
taking an exponential time (mean 1 / apply_rate): a replica is a single-server
queue, and its lag is the time a write waits in it plus the network delay.

Reads go to the master, to a random replica, to the same replica every time
for a user (sticky), to the master for a while after their user wrote
(read-your-writes), or to R random copies at once, the newest version winning
(quorum). A read is stale when none of the servers it asked has applied the
latest acknowledged write to the row. Asynchronous replication acknowledges a
write at once; semi-synchronous once one other server applied it; synchronous
once every other live server did; quorum once W copies (its master included)
did. With quorum reads and writes over N live copies, R + W > N makes every read
meet a copy that has the latest acknowledged write.

Each server remembers which write made the version of each row it holds, so a
read knows the version it returned: a user who is shown an older version of a
row than their previous read of it showed saw a monotonic-read violation, and a
read-back that shows an older version than the user's own write a
read-your-writes violation. In master-master, both masters
take writes (each user writes to one of them) and replicate to each other;
concurrent updates of a row conflict and the last writer wins.

Writes carry their origin master and their number there, so every server knows
how far it is with each origin (a vector of positions, as GTIDs do): failover
re-points replicas without losing their place, and a write is lost exactly when
no live server ever received it.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from heapq import heapify, heappop, heappush
from itertools import islice
from typing import Any

from ..sampling import zipf_cdf
from ..theory.replication import (
    backlog_growth_rate,
    master_master_mean_lag,
    quorums_overlap,
    replica_lag_quantile,
    replica_mean_lag,
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

INF = math.inf
MAX_REPLICAS = 10  # live replicas at once
MAX_NODES = 100  # servers ever created in one run (ids are never reused)
MAX_BACKLOG = 200_000  # writes a server may queue before it breaks (bounded memory)
RECENT_S = 3.0
MAX_COPIES = MAX_REPLICAS + 2  # two masters and ten replicas
# (user, row) -> version last shown: swept of versions every server holds once
# it doubles, and never more than this many (the oldest go first).
MAX_SEEN = 200_000

# Lags are kept in a histogram with 100 bins a decade (2.3 % wide) from 1 us to
# 1e6 s: the p99 it gives is within about 1.2 % of the exact one.
HIST_PER_DECADE = 100
HIST_LOW = 1e-6
HIST_BINS = 12 * HIST_PER_DECADE
HIST_SCALE = HIST_PER_DECADE / math.log(10.0)
HIST_OFFSET = -math.log(HIST_LOW) * HIST_SCALE

# Heap entries are (time, seq, kind, a, b, c).
READ, WRITE, BURST, ARRIVE, APPLIED, READ_BACK, RESUME = range(7)

# A write: (origin server id, number at the origin, row, commit time, user).
Entry = tuple[int, int, int, float, int]


class Node:
    """One database server: a master, or a replica applying its source's writes in order."""

    def __init__(self, ident: int, name: str, role: str, source: int | None) -> None:
        self.id = ident
        self.name = name
        self.role = role  # "master" or "replica"
        self.source = source  # the server it replicates from (None: a lone master)
        self.alive = True
        self.busy = False  # applying a write now
        self.paused_until = 0.0
        self.queue: deque[Entry] = deque()  # received, not yet applied
        self.vec: dict[int, int] = {}  # origin -> last of its writes applied here
        self.recv: dict[int, int] = {}  # origin -> last of its writes received here
        # row -> (commit time, origin) of the version held: last-writer-wins on the
        # masters of a master-master pair (nowhere else is it needed).
        self.versions: dict[int, tuple[float, int]] = {}
        # row -> the write whose version is held (the newest by commit time), so a
        # read knows what it showed
        self.held: dict[int, Entry] = {}
        self.ops = 0  # as a master: reads served, writes taken, writes applied


def _bin(lag: float) -> int:
    if lag <= HIST_LOW:
        return 0
    return min(HIST_BINS - 1, int(math.log(lag) * HIST_SCALE + HIST_OFFSET))


def _ident(node: Node) -> int:
    return node.id


def _older(version: Entry | None, than: Entry) -> bool:
    """Return whether ``version`` (None: the row as first loaded) predates ``than``."""
    if version is None:
        return True
    return version[3] < than[3] or (version[3] == than[3] and version[0] < than[0])


def _saturated(write_rate: float, apply_rate: float) -> str:
    growth = backlog_growth_rate(write_rate, apply_rate)
    return (
        f"the write rate, {write_rate:g}/s, is at or above the apply rate, "
        f"{apply_rate:g}/s: a replica's backlog grows by "
        f"{write_rate - apply_rate:g} writes and its lag by {growth:.2g} s every "
        "second, so no steady state exists"
    )


class ReplicationEngine(Engine):
    kind = "replication"
    title = "Master-replica replication"
    description = (
        "Writes go to a master and are replayed, in order, by replicas after a "
        "network delay: reads from replicas are cheap but can be stale. Choose "
        "where reads go, how long a write waits for replicas, kill the master and "
        "see which writes a failover loses, or let two masters conflict."
    )
    params = (
        Param(
            "replicas",
            "int",
            2,
            1,
            MAX_REPLICAS,
            unit="replicas",
            help="How many replicas copy the master.",
            label="Replicas",
        ),
        Param(
            "write_rate",
            "float",
            100.0,
            0.0,
            5_000.0,
            unit="writes/s",
            step=10,
            help="Average writes per second arriving at random (Poisson).",
            label="Write rate",
        ),
        Param(
            "apply_rate",
            "float",
            150.0,
            1.0,
            20_000.0,
            unit="writes/s",
            step=10,
            help=(
                "How many writes a replica applies per second (each takes an "
                "exponential time). At or below the write rate its lag grows without bound."
            ),
            label="Replica apply rate",
        ),
        Param(
            "network_delay_ms",
            "float",
            5.0,
            0.0,
            5_000.0,
            unit="ms",
            step=1,
            help="Time for a write to travel from a server to the one replicating it.",
            label="Network delay",
        ),
        Param(
            "read_rate",
            "float",
            500.0,
            0.0,
            20_000.0,
            unit="reads/s",
            step=10,
            help="Average reads per second of random rows by random users (Poisson).",
            label="Read rate",
        ),
        Param(
            "read_from",
            "choice",
            "replicas",
            choices=("master", "replicas", "read_your_writes", "sticky", "quorum"),
            help=(
                "master: every read goes to the master. replicas: to a random replica. "
                "read_your_writes: a user's reads go to the master for a while after "
                "that user wrote, to a replica otherwise. sticky: each user always "
                "reads the same replica. quorum: each read asks R random copies "
                "(masters and replicas) and takes the newest version."
            ),
            label="Reads go to",
        ),
        Param(
            "ryw_window_s",
            "float",
            2.0,
            0.0,
            600.0,
            unit="s",
            step=0.5,
            help="read_your_writes: how long after a write its user reads from the master.",
            label="Read-your-writes window",
        ),
        Param(
            "replication",
            "choice",
            "async",
            choices=("async", "semi_sync", "sync", "quorum"),
            help=(
                "When a write is acknowledged: async at once; semi_sync once one other "
                "server applied it; sync once every other live server did; quorum once "
                "W copies, its master included, did."
            ),
            label="Replication",
        ),
        Param(
            "write_quorum",
            "int",
            2,
            1,
            MAX_COPIES,
            unit="copies",
            help=(
                "quorum replication: how many copies, the master included, must have "
                "applied a write before it is acknowledged (W). More than the live "
                "copies means all of them."
            ),
            label="Write quorum W",
        ),
        Param(
            "read_quorum",
            "int",
            2,
            1,
            MAX_COPIES,
            unit="copies",
            help=(
                "quorum reads: how many different copies each read asks (R); the "
                "newest version among them is returned. At most the live copies."
            ),
            label="Read quorum R",
        ),
        Param(
            "topology",
            "choice",
            "master_slave",
            choices=("master_slave", "master_master"),
            help=(
                "master_slave: one master takes the writes. master_master: two masters "
                "take writes (each user writes to one) and replicate to each other; the "
                "replicas follow the first. Changing it rebuilds the cluster."
            ),
            label="Topology",
        ),
        Param(
            "rows",
            "int",
            1_000,
            1,
            100_000,
            unit="rows",
            help="How many rows the data has.",
            label="Rows",
        ),
        Param(
            "zipf_s",
            "float",
            0.9,
            0.0,
            2.5,
            step=0.05,
            help="Skew of row popularity for reads and writes: 0 is uniform.",
            label="Popularity skew (Zipf s)",
        ),
        Param(
            "users",
            "int",
            1_000,
            1,
            100_000,
            unit="users",
            help="How many users make the reads and writes.",
            label="Users",
        ),
        Param(
            "read_back_ms",
            "float",
            100.0,
            0.0,
            10_000.0,
            unit="ms",
            step=10,
            help=(
                "After each acknowledged write its user reads the row back this much "
                "later (the page reload after saving): the read that must see the write."
            ),
            label="Read-back delay",
        ),
        Param(
            "master_capacity",
            "float",
            2_000.0,
            10.0,
            100_000.0,
            unit="ops/s",
            step=100,
            help="Reads and writes per second a master can serve.",
            label="Master capacity",
        ),
    )
    commands = (
        Command(
            "kill_master",
            "Kill master",
            "The master dies. The most up-to-date replica is promoted (in master-master "
            "the other master carries on); writes no live server received are lost.",
            args=(
                Param(
                    "master",
                    "int",
                    1,
                    1,
                    2,
                    help="Which master, in order (1 is the one replicas follow).",
                ),
            ),
        ),
        Command(
            "kill_replica",
            "Kill replica",
            "A replica dies; its reads go elsewhere.",
            args=(
                Param(
                    "replica",
                    "int",
                    1,
                    1,
                    MAX_NODES,
                    help="The replica's number (r1 is 1).",
                ),
            ),
        ),
        Command(
            "pause_replica",
            "Pause replica",
            "A replica stops applying writes for a while (a long query, a backup); "
            "it keeps receiving them.",
            args=(
                Param(
                    "replica",
                    "int",
                    1,
                    1,
                    MAX_NODES,
                    help="The replica's number (r1 is 1).",
                ),
                Param("seconds", "float", 5.0, 0.25, 600.0, unit="s", help="How long."),
            ),
        ),
        Command(
            "add_replica",
            "Add replica",
            "A new replica, cloned from the master's data, starts following it.",
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
    )
    quiet_events = ("replication.lag",)
    event_types = (
        "replication.lag",
        "replication.applied",
        "replication.failover",
        "replication.conflict",
        "read.stale",
        "replication.write",
        "replication.kill_replica",
        "replication.pause",
        "replication.resume",
        "replication.add_replica",
        "replication.write_burst",
        "replication.broken",
        "replication.topology",
    )
    narration = {
        "replication.failover": (
            "Master {dead} died; {master} now takes the writes ({lost_writes#write} "
            "lost, {failed_writes} failed)"
        ),
        "replication.kill_replica": "Replica {replica} was killed",
        "replication.pause": "Replica {replica} paused for {seconds} s",
        "replication.resume": "Replica {replica} is replicating again",
        "replication.add_replica": "Replica {replica} joined",
        "replication.write_burst": "A burst of {writes} writes over {duration_s} s",
        "replication.broken": (
            "Replica {replica} fell {backlog#write} behind and stopped replicating"
        ),
        "replication.topology": "The topology is now {topology}",
    }
    metric_specs = (
        Metric(
            "mean_lag_ms",
            "Mean replication lag",
            "ms",
            help="From commit on the master to apply elsewhere.",
        ),
        Metric("p99_lag_ms", "99th percentile lag", "ms"),
        Metric("max_lag_ms", "Largest lag", "ms"),
        Metric(
            "stale_read_ratio",
            "Stale reads",
            help="Share of reads that missed an acknowledged write.",
        ),
        Metric(
            "lost_writes",
            "Lost writes",
            "writes",
            help="Acknowledged writes a failover lost.",
        ),
        Metric(
            "failed_writes",
            "Failed writes",
            "writes",
            help="Writes still waiting for replicas when their master died.",
        ),
        Metric(
            "conflicts",
            "Conflicts",
            "writes",
            help="Concurrent updates of a row overwritten by the last writer.",
        ),
        Metric(
            "master_utilization",
            "Master load",
            help="Operations the masters served over their capacity.",
        ),
        Metric("writes", "Writes", "writes"),
        Metric("reads", "Reads", "reads"),
        Metric("stale_reads", "Stale reads", "reads"),
        Metric(
            "stale_read_backs",
            "Missed own writes",
            "reads",
            help="Read-backs that did not see the user's own write.",
        ),
        Metric(
            "mean_write_latency_ms",
            "Mean write wait",
            "ms",
            help="From commit to acknowledgement.",
        ),
        Metric(
            "monotonic_violations",
            "Monotonic-read violations",
            "reads",
            help=(
                "Reads that showed a user an older version of a row than their "
                "previous read of it did: time went backwards."
            ),
        ),
        Metric(
            "ryw_violations",
            "Read-your-writes violations",
            "reads",
            help=(
                "Read-backs that showed a user a version older than their own write "
                "(a later write by someone else counts as seeing it)."
            ),
        ),
        Metric(
            "writes_waiting",
            "Writes awaiting acknowledgement",
            "writes",
            help="Committed writes still waiting for enough copies to apply them.",
        ),
        Metric("copies", "Live copies (N)", "copies", summary=False),
        Metric("node_names", "Servers", summary=False),
        Metric("node_roles", "Roles", summary=False),
        Metric("node_lag_ms", "Lag now", "ms", summary=False),
        Metric("node_behind", "Writes behind", "writes", summary=False),
        Metric("node_paused", "Paused", summary=False),
        Metric("lag_ms_recent", "Mean lag (last 3 s)", "ms", summary=False),
        Metric("max_node_lag_ms", "Largest lag now", "ms", summary=False),
        Metric("stale_read_ratio_recent", "Stale reads (last 3 s)", summary=False),
        Metric("write_latency_ms_recent", "Write wait (last 3 s)", "ms", summary=False),
        Metric("writes_per_s_recent", "Writes (last 3 s)", "writes/s", summary=False),
        Metric("reads_per_s_recent", "Reads (last 3 s)", "reads/s", summary=False),
        Metric("master_utilization_recent", "Master load (last 3 s)", summary=False),
        Metric(
            "conflicts_per_s_recent", "Conflicts (last 3 s)", "writes/s", summary=False
        ),
        Metric(
            "monotonic_per_s_recent",
            "Monotonic-read violations (last 3 s)",
            "reads/s",
            summary=False,
        ),
        Metric(
            "ryw_per_s_recent",
            "Read-your-writes violations (last 3 s)",
            "reads/s",
            summary=False,
        ),
    )
    theory_models = {
        "mean_lag_ms": "M/M/1 apply queue plus the network delay",
        "p99_lag_ms": "M/M/1 sojourn (exponential) plus the network delay",
        "stale_read_ratio": "read and write sets of copies that always overlap",
    }
    derived = ("_cdf",)

    def rebuild(self) -> None:
        self._cdf = zipf_cdf(self.p["rows"], self.p["zipf_s"])

    def setup(self) -> None:
        self.heap: list[tuple[Any, ...]] = []
        self.seq = 0
        self.read_gen = self.write_gen = self.burst_gen = 0
        self.burst_rate = 0.0
        self.burst_end = 0.0
        self.window = Window(span=RECENT_S)
        self.replica_count = 0  # replicas ever created, for their names
        self._build_cluster()
        self._start_stream(READ)
        self._start_stream(WRITE)
        self.reset_stats()

    def _build_cluster(self) -> None:
        """Build a fresh cluster of the current topology, all servers in step."""
        self.nodes: list[Node] = []
        self.masters: list[int] = []
        self.replica_ids: list[int] = []
        self.followers: dict[int, list[int]] = {}
        # Per origin (a master, by id): how many writes it committed; the writes
        # kept (those some live server has not applied yet) and the number of the
        # first of them; the writes awaiting acknowledgement; and, once it is dead,
        # the last write it acknowledged.
        self.oseq: dict[int, int] = {}
        self.entries: dict[int, deque[Entry]] = {}
        self.entry_base: dict[int, int] = {}
        self.pending: dict[int, deque[Entry]] = {}
        self.acked_to: dict[int, int] = {}
        # row -> (commit time, origin, number) of the acknowledged write that wins
        self.current: dict[int, tuple[float, int, int]] = {}
        self.last_write: dict[int, float] = {}  # user -> time of their last write
        self.seen: dict[int, Entry | None] = {}  # user * rows + row -> version shown
        self.seen_sweep = 4096  # sweep self.seen when it grows past this
        self._new_master(None)
        if self.p["topology"] == "master_master":
            self._new_master(0)
            self.nodes[0].source = 1
        self.replica_count = 0
        for _ in range(self.p["replicas"]):
            self._new_replica()
        self._link()

    def _new_master(self, source: int | None) -> Node:
        node = Node(len(self.nodes), f"m{len(self.masters) + 1}", "master", source)
        self.nodes.append(node)
        self.masters.append(node.id)
        self.oseq[node.id] = 0
        self.entries[node.id] = deque()
        self.entry_base[node.id] = 1
        self.pending[node.id] = deque()
        return node

    def _new_replica(self) -> Node:
        primary = self.nodes[self.masters[0]]
        self.replica_count += 1
        node = Node(len(self.nodes), f"r{self.replica_count}", "replica", primary.id)
        # cloned from the primary's data, so in step with it
        node.vec = dict(primary.vec)
        node.recv = dict(primary.vec)
        node.held = dict(primary.held)
        self.nodes.append(node)
        self.replica_ids.append(node.id)
        return node

    def _link(self) -> None:
        """Recompute who ships writes to whom."""
        self.followers = {n.id: [] for n in self.nodes if n.alive}
        for node in self.nodes:
            if node.alive and node.source is not None:
                self.followers[node.source].append(node.id)

    def _push(
        self, t: float, kind: int, a: Any = None, b: Any = None, c: Any = None
    ) -> None:
        self.seq += 1
        heappush(self.heap, (t, self.seq, kind, a, b, c))

    def _start_stream(self, kind: int) -> None:
        """(Re)start the read or write arrivals at the current rate (memoryless)."""
        if kind == READ:
            self.read_gen += 1
            rate, gen = self.p["read_rate"], self.read_gen
        else:
            self.write_gen += 1
            rate, gen = self.p["write_rate"], self.write_gen
        if rate > 0:
            self._push(self.now + self.rng.expovariate(rate), kind, gen)

    def reset_stats(self) -> None:
        self.since = self.now
        self.writes = self.reads = self.stale_reads = self.read_backs = 0
        self.stale_read_backs = 0
        self.applied = 0
        self.lag_sum = 0.0
        self.lag_max = 0.0
        self.lag_hist: dict[int, int] = {}
        self.lost_writes = self.failed_writes = self.conflicts = 0
        self.acked = 0
        self.write_wait_sum = 0.0
        self.master_ops = 0
        self.monotonic = self.ryw = 0
        for node in self.nodes:
            node.ops = 0

    # Running ----------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        heap = self.heap
        rng = self.rng
        expo = rng.expovariate
        before = (
            self.writes,
            self.reads,
            self.stale_reads,
            self.applied,
            self.lag_sum,
            self.conflicts,
            self.acked,
            self.write_wait_sum,
            self.master_ops,
            self.monotonic,
            self.ryw,
        )
        events: list[Event] = []
        handled = 0
        while heap and heap[0][0] <= end:
            t, _, kind, a, b, c = heappop(heap)
            handled += 1
            if kind == APPLIED:
                self._applied(self.nodes[a], t)
            elif kind == ARRIVE:
                self._arrive(self.nodes[a], b, c, t, events)
            elif kind == READ:
                if a != self.read_gen:
                    continue
                self._read(int(rng.random() * self.p["users"]), self._row(), t, None)
                self._push(t + expo(self.p["read_rate"]), READ, a)
            elif kind == WRITE:
                if a != self.write_gen:
                    continue
                self._write(t)
                self._push(t + expo(self.p["write_rate"]), WRITE, a)
            elif kind == READ_BACK:
                self._read(a, b, t, c)
            elif kind == BURST:
                if a != self.burst_gen:
                    continue
                self._write(t)
                t_next = t + expo(self.burst_rate)
                if t_next <= self.burst_end:
                    self._push(t_next, BURST, a)
            elif kind == RESUME:
                node = self.nodes[a]
                if node.alive and node.paused_until <= t:
                    events.append(
                        {"type": "replication.resume", "t": t, "replica": node.name}
                    )
                    if node.queue and not node.busy:
                        self._start_apply(node, t)
        self.processed += handled
        self._trim()
        return self._tally(before, end) + events

    def _row(self) -> int:
        row = bisect_right(self._cdf, self.rng.random())
        last = self.p["rows"] - 1
        return row if row < last else last

    def _write(self, t: float) -> None:
        user = int(self.rng.random() * self.p["users"])
        row = self._row()
        node = self.nodes[self.masters[user % len(self.masters)]]
        origin = node.id
        number = self.oseq[origin] + 1
        self.oseq[origin] = number
        entry = (origin, number, row, t, user)
        self.entries[origin].append(entry)
        node.vec[origin] = number
        node.recv[origin] = number
        node.ops += 1
        self.master_ops += 1
        self.writes += 1
        if self.p["topology"] == "master_master":
            node.versions[row] = (t, origin)
        node.held[row] = entry
        self.last_write[user] = t
        self._ship(node, entry, t)
        if self.p["replication"] == "async":
            self._ack(entry, t)
        else:
            self.pending[origin].append(entry)
            self._check_acks(origin, t)

    def _ship(self, node: Node, entry: Entry, t: float) -> None:
        """Send a write ``node`` committed or applied to the servers following it."""
        followers = self.followers.get(node.id)
        if not followers:
            return
        arrival = t + self.p["network_delay_ms"] / 1000.0
        origin = entry[0]
        for target in followers:
            if target != origin:
                self._push(arrival, ARRIVE, target, entry, node.id)

    def _arrive(
        self, node: Node, entry: Entry, source: int, t: float, events: list[Event]
    ) -> None:
        if not node.alive or not self.nodes[source].alive:
            return  # the receiver, or the sender and its network buffers, died
        origin, number = entry[0], entry[1]
        if number <= node.recv.get(origin, 0):
            return  # already received by another path (after a failover)
        node.recv[origin] = number
        node.queue.append(entry)
        if len(node.queue) > MAX_BACKLOG:
            events.append(self._break(node, t))
        elif not node.busy and node.paused_until <= t:
            self._start_apply(node, t)

    def _start_apply(self, node: Node, t: float) -> None:
        node.busy = True
        self._push(t + self.rng.expovariate(self.p["apply_rate"]), APPLIED, node.id)

    def _applied(self, node: Node, t: float) -> None:
        if not node.alive:
            return
        entry = node.queue.popleft()
        origin, number, row, ts, _ = entry
        if number > node.vec.get(origin, 0):
            node.vec[origin] = number
            lag = t - ts
            self.applied += 1
            self.lag_sum += lag
            if lag > self.lag_max:
                self.lag_max = lag
            index = _bin(lag)
            self.lag_hist[index] = self.lag_hist.get(index, 0) + 1
            had = node.held.get(row)
            if had is None or ts > had[3] or (ts == had[3] and origin > had[0]):
                node.held[row] = entry
            if node.role == "master":
                node.ops += 1
                self.master_ops += 1
                if self.p["topology"] == "master_master":
                    held = node.versions.get(row)
                    if held is not None and held > (ts, origin):
                        # A concurrent, later update of the row is already here:
                        # the last writer wins and this update is lost.
                        self.conflicts += 1
                    else:
                        node.versions[row] = (ts, origin)
            self._ship(node, entry, t)
            if self.pending[origin]:
                self._check_acks(origin, t)
        if node.queue and node.paused_until <= t:
            self._start_apply(node, t)
        else:
            node.busy = False

    def _check_acks(self, origin: int, t: float) -> None:
        """Acknowledge the pending writes of ``origin`` that enough servers applied."""
        pending = self.pending[origin]
        others = [
            n.vec.get(origin, 0) for n in self.nodes if n.alive and n.id != origin
        ]
        mode = self.p["replication"]
        if not others or mode == "async":
            frontier = self.oseq[origin]
        elif mode == "sync":
            frontier = min(others)
        elif mode == "semi_sync":
            frontier = max(others)
        else:
            # quorum: the origin and W - 1 others; more than there are is all
            need = self.p["write_quorum"] - 1
            if need <= 0:
                frontier = self.oseq[origin]
            elif need >= len(others):
                frontier = min(others)
            else:
                frontier = sorted(others, reverse=True)[need - 1]
        while pending and pending[0][1] <= frontier:
            self._ack(pending.popleft(), t)

    def _ack(self, entry: Entry, t: float) -> None:
        origin, number, row, ts, user = entry
        held = self.current.get(row)
        if held is None or (ts, origin) > (held[0], held[1]):
            self.current[row] = (ts, origin, number)
        self.acked += 1
        self.write_wait_sum += t - ts
        self._push(t + self.p["read_back_ms"] / 1000.0, READ_BACK, user, row, entry)

    def _read(self, user: int, row: int, t: float, own: Entry | None) -> None:
        """Serve one read; ``own`` is the user's write when it is their read-back."""
        route = self.p["read_from"]
        held = self.current.get(row)
        if route == "quorum" and len(self.masters) + len(self.replica_ids) > 1:
            version, stale = self._quorum_read(row, held)
        else:
            if (
                route == "master"
                or not self.replica_ids
                or (
                    route == "read_your_writes"
                    and t - self.last_write.get(user, -INF) < self.p["ryw_window_s"]
                )
            ):
                node = self.nodes[self.masters[user % len(self.masters)]]
                node.ops += 1
                self.master_ops += 1
            elif route == "sticky":
                ids = self.replica_ids
                node = self.nodes[ids[user % len(ids)]]
            else:
                ids = self.replica_ids
                node = self.nodes[ids[int(self.rng.random() * len(ids))]]
            version = node.held.get(row)
            stale = held is not None and node.vec.get(held[1], 0) < held[2]
        self.reads += 1
        if stale:
            self.stale_reads += 1
            if own is not None:
                self.stale_read_backs += 1
        if own is not None:
            self.read_backs += 1
            if _older(version, own):
                self.ryw += 1
        key = user * self.p["rows"] + row
        last = self.seen.get(key)
        if last is not None and _older(version, last):
            self.monotonic += 1
        if version is not None or last is not None:
            self.seen[key] = version

    def _quorum_read(
        self, row: int, held: tuple[float, int, int] | None
    ) -> tuple[Entry | None, bool]:
        """Ask R random copies; return the newest version and whether all missed ``held``."""
        ids = self.masters + self.replica_ids
        count = len(ids)
        rand = self.rng.random
        version: Entry | None = None
        # the write to find: (origin, number); none yet is fresh whatever is asked
        want = (-1, 0) if held is None else (held[1], held[2])
        fresh = held is None
        for i in range(min(self.p["read_quorum"], count)):
            # a partial Fisher-Yates shuffle: R different copies, cheaper than sample()
            j = i + int(rand() * (count - i))
            ids[i], ids[j] = ids[j], ids[i]
            node = self.nodes[ids[i]]
            if node.role == "master":
                node.ops += 1
                self.master_ops += 1
            got = node.held.get(row)
            if got is not None and (version is None or _older(version, got)):
                version = got
            if not fresh and node.vec.get(want[0], 0) >= want[1]:
                fresh = True
        return version, not fresh

    def _sweep_seen(self) -> None:
        """Forget versions every live server holds: no read can go back past them."""
        seen, base = self.seen, self.entry_base
        for key in [
            k
            for k, v in seen.items()
            if v is None or (v[0] in base and v[1] < base[v[0]])
        ]:
            del seen[key]
        excess = len(seen) - MAX_SEEN
        if excess > 0:
            for key in list(islice(seen, excess)):
                del seen[key]
        self.seen_sweep = max(4096, 2 * len(seen))

    def _trim(self) -> None:
        """Forget the writes every live server has applied."""
        live = [n for n in self.nodes if n.alive]
        for origin, kept in self.entries.items():
            done = min(n.vec.get(origin, 0) for n in live)
            base = self.entry_base[origin]
            while kept and base <= done:
                kept.popleft()
                base += 1
            self.entry_base[origin] = base

    def _tally(self, before: tuple[Any, ...], end: float) -> list[Event]:
        writes = self.writes - before[0]
        reads = self.reads - before[1]
        stale = self.stale_reads - before[2]
        applied = self.applied - before[3]
        conflicts = self.conflicts - before[5]
        if len(self.seen) > self.seen_sweep:
            self._sweep_seen()
        self.window.add(
            self.now,
            writes=writes,
            reads=reads,
            stale=stale,
            applied=applied,
            lag=self.lag_sum - before[4],
            conflicts=conflicts,
            acked=self.acked - before[6],
            wait=self.write_wait_sum - before[7],
            master_ops=self.master_ops - before[8],
            monotonic=self.monotonic - before[9],
            ryw=self.ryw - before[10],
        )
        events: list[Event] = []
        if writes:
            events.append({"type": "replication.write", "count": writes})
        if applied:
            events.append({"type": "replication.applied", "count": applied})
        if stale:
            events.append({"type": "read.stale", "count": stale})
        if conflicts:
            events.append({"type": "replication.conflict", "count": conflicts})
        for node in self.nodes:
            if node.alive and node.source is not None:
                events.append(
                    {
                        "type": "replication.lag",
                        "t": end,
                        "replica": node.name,
                        "lag_ms": 1000.0 * self._lag_now(node, end),
                    }
                )
        return events

    def _lag_now(self, node: Node, now: float) -> float:
        """Return how old the oldest write ``node`` has not applied yet is."""
        oldest = now
        for origin, kept in self.entries.items():
            index = node.vec.get(origin, 0) + 1 - self.entry_base[origin]
            if 0 <= index < len(kept) and kept[index][3] < oldest:
                oldest = kept[index][3]
        return now - oldest

    def _behind(self, node: Node) -> int:
        behind = 0
        for origin, kept in self.entries.items():
            last = self.entry_base[origin] + len(kept) - 1
            behind += max(0, last - node.vec.get(origin, 0))
        return behind

    # Failures -----------------------------------------------------------------

    def _break(self, node: Node, t: float) -> Event:
        """A server too far behind runs out of log space and stops replicating."""
        backlog = len(node.queue)
        self._remove_node(node)
        return {
            "type": "replication.broken",
            "t": t,
            "replica": node.name,
            "backlog": backlog,
        }

    def _remove_node(self, node: Node) -> None:
        node.alive = False
        node.busy = False
        node.queue.clear()
        if node.id in self.replica_ids:
            self.replica_ids.remove(node.id)
        self._link()
        for origin in self.pending:
            if self.pending[origin]:
                self._check_acks(origin, self.now)

    def _failover(self, dead: Node) -> Event:
        dead.alive = False
        dead.busy = False
        dead.queue.clear()
        self.masters.remove(dead.id)
        live = [n for n in self.nodes if n.alive]
        promoted = None
        if not self.masters:
            # The replica that received the most writes becomes the master.
            best = max(
                (self.nodes[i] for i in self.replica_ids),
                key=lambda n: (sum(n.recv.values()), -n.id),
            )
            best.role = "master"
            self.replica_ids.remove(best.id)
            self.masters.append(best.id)
            self.oseq[best.id] = 0
            self.entries[best.id] = deque()
            self.entry_base[best.id] = 1
            self.pending[best.id] = deque()
            promoted = best.name
        primary = self.masters[0]
        for node in live:
            node.source = None if node.id == primary else primary
        if len(self.masters) == 2:
            self.nodes[primary].source = self.masters[1]
        self._link()
        # Every live server gets what any live server received; the rest of the
        # writes of dead masters is lost.
        delay = self.p["network_delay_ms"] / 1000.0
        lost = failed = 0
        for origin, kept in self.entries.items():
            keep, holder = max((n.recv.get(origin, 0), -n.id) for n in live)
            base = self.entry_base[origin]
            for node in live:
                for number in range(node.recv.get(origin, 0) + 1, keep + 1):
                    self._push(
                        self.now + delay, ARRIVE, node.id, kept[number - base], -holder
                    )
            if self.nodes[origin].alive:
                continue  # all its writes are on it
            if origin == dead.id:
                # Writes still waiting for replicas fail: their client gets no answer.
                pending = self.pending[origin]
                self.acked_to[origin] = (
                    pending[0][1] - 1 if pending else self.oseq[origin]
                )
                failed += len(pending)
                pending.clear()
            while kept and base + len(kept) - 1 > keep:
                entry = kept.pop()
                if entry[1] <= self.acked_to[origin]:
                    lost += 1
                row = entry[2]
                if self.current.get(row, (0.0, -1, -1))[1:] == (origin, entry[1]):
                    del self.current[row]  # what survives is the truth now
        self.lost_writes += lost
        self.failed_writes += failed
        for origin in self.pending:
            if self.pending[origin]:
                self._check_acks(origin, self.now)
        return {
            "type": "replication.failover",
            "t": self.now,
            "dead": dead.name,
            "promoted": promoted,
            "master": self.nodes[primary].name,
            "lost_writes": lost,
            "failed_writes": failed,
        }

    # Figures ------------------------------------------------------------------

    def _lag_percentile(self, q: float) -> float:
        total = sum(self.lag_hist.values())
        if not total:
            return 0.0
        rank = q * total
        seen = 0
        for index in sorted(self.lag_hist):
            seen += self.lag_hist[index]
            if seen >= rank:
                # the bin's geometric middle
                return math.exp((index + 0.5 - HIST_OFFSET) / HIST_SCALE)
        return self.lag_max

    def metrics(self) -> dict[str, Any]:
        elapsed = max(self.now - self.since, 1e-9)
        w, now = self.window, self.now
        span = w.seconds(now)
        recent_reads = w.total("reads", now)
        recent_applied = w.total("applied", now)
        recent_acked = w.total("acked", now)
        capacity = self.p["master_capacity"] * len(self.masters)
        live = [n for n in self.nodes if n.alive]
        lags = [1000.0 * self._lag_now(n, now) for n in live]
        return {
            "mean_lag_ms": 1000.0 * self.lag_sum / self.applied
            if self.applied
            else 0.0,
            "p99_lag_ms": 1000.0 * self._lag_percentile(0.99),
            "max_lag_ms": 1000.0 * self.lag_max,
            "stale_read_ratio": self.stale_reads / self.reads if self.reads else 0.0,
            "lost_writes": self.lost_writes,
            "failed_writes": self.failed_writes,
            "conflicts": self.conflicts,
            "master_utilization": self.master_ops / (capacity * elapsed),
            "writes": self.writes,
            "reads": self.reads,
            "stale_reads": self.stale_reads,
            "stale_read_backs": self.stale_read_backs,
            "mean_write_latency_ms": 1000.0 * self.write_wait_sum / self.acked
            if self.acked
            else 0.0,
            "monotonic_violations": self.monotonic,
            "ryw_violations": self.ryw,
            "writes_waiting": sum(len(p) for p in self.pending.values()),
            "copies": len(live),
            "node_names": [n.name for n in live],
            "node_roles": [n.role for n in live],
            "node_lag_ms": lags,
            "node_behind": [self._behind(n) for n in live],
            "node_paused": [1 if n.paused_until > now else 0 for n in live],
            "lag_ms_recent": 1000.0 * w.total("lag", now) / recent_applied
            if recent_applied
            else 0.0,
            "max_node_lag_ms": max(lags, default=0.0),
            "stale_read_ratio_recent": w.total("stale", now) / recent_reads
            if recent_reads
            else 0.0,
            "write_latency_ms_recent": 1000.0 * w.total("wait", now) / recent_acked
            if recent_acked
            else 0.0,
            "writes_per_s_recent": w.total("writes", now) / span,
            "reads_per_s_recent": recent_reads / span,
            "master_utilization_recent": w.total("master_ops", now) / (capacity * span),
            "conflicts_per_s_recent": w.total("conflicts", now) / span,
            "monotonic_per_s_recent": w.total("monotonic", now) / span,
            "ryw_per_s_recent": w.total("ryw", now) / span,
        }

    def picture(self) -> dict[str, Any]:
        """Return each server's role, source, applied-not-yet backlog and state.

        The live servers, then up to two dead ones (what a kill left), so that the
        picture can show what failed; the lag is in the metrics already.
        """
        now = self.now
        live = [n for n in self.nodes if n.alive]
        dead = [n for n in self.nodes if not n.alive]
        room = max(0, len(self.masters) + MAX_REPLICAS - len(live))
        shown = sorted(live + dead[-min(2, room) :] if room else live, key=_ident)
        servers = []
        for n in shown:
            if not n.alive:
                state = "down"
            elif n.paused_until > now:
                state = "paused"
            else:
                state = "up"
            source = self.nodes[n.source].name if n.source is not None else ""
            servers.append([n.name, n.role, source, len(n.queue), state])
        return {"servers": servers, "reads_to": self.p["read_from"]}

    def theory_key(self) -> tuple[Any, ...]:
        return (*super().theory_key(), len(self.masters), len(self.replica_ids))

    def compute_theory(self) -> TheoryFigures:
        return {**self._lag_theory(), "stale_read_ratio": self._stale_theory()}

    def _lag_theory(self) -> dict[str, float | str]:
        lam, mu = self.p["write_rate"], self.p["apply_rate"]
        delay = self.p["network_delay_ms"] / 1000.0
        if lam <= 0:
            why = "no writes: there is nothing to replicate, so no lag"
            return {"mean_lag_ms": why, "p99_lag_ms": why}
        replicas = len(self.replica_ids)
        if len(self.masters) == 2:
            users = self.p["users"]
            share = (users + 1) // 2 / users  # users of even number write to m1
            mean = master_master_mean_lag(lam, mu, delay, replicas, share)
            if not math.isfinite(mean):
                return {
                    "mean_lag_ms": _saturated(lam if replicas else lam * share, mu),
                    "p99_lag_ms": _saturated(lam, mu),
                }
            return {
                "mean_lag_ms": 1000.0 * mean,
                "p99_lag_ms": (
                    "two masters mix lags of one and two hops; "
                    "theory here gives only their mean"
                ),
            }
        if not replicas:
            why = "no replica is left to replicate to"
            return {"mean_lag_ms": why, "p99_lag_ms": why}
        if lam >= mu:
            why = _saturated(lam, mu)
            return {"mean_lag_ms": why, "p99_lag_ms": why}
        return {
            "mean_lag_ms": 1000.0 * replica_mean_lag(lam, mu, delay),
            "p99_lag_ms": 1000.0 * replica_lag_quantile(0.99, lam, mu, delay),
        }

    def _stale_theory(self) -> float | str:
        """Return 0 when every read must meet the latest acknowledged write, else why not."""
        copies = len(self.masters) + len(self.replica_ids)
        mode, route = self.p["replication"], self.p["read_from"]
        write_set = {
            "async": 1,
            "semi_sync": min(2, copies),
            "sync": copies,
            "quorum": min(self.p["write_quorum"], copies),
        }[mode]
        if route == "quorum":
            if quorums_overlap(copies, write_set, self.p["read_quorum"]):
                return 0.0
            read_set = min(self.p["read_quorum"], copies)
            return (
                f"R + W = {read_set} + {write_set} is not above N = {copies}: a "
                "read can miss every copy that has the latest write, as often as "
                "the lag and the rows' write rates make it"
            )
        if write_set >= copies or (route == "master" and len(self.masters) == 1):
            return 0.0
        return (
            "a read of one copy can miss a write that only some copies have; how "
            "often depends on how often each row is written within the lag, for "
            "which there is no closed form here"
        )

    # Commands -----------------------------------------------------------------

    def _live_replica(self, command: str, number: int) -> Node:
        for node_id in self.replica_ids:
            if self.nodes[node_id].name == f"r{number}":
                return self.nodes[node_id]
        allowed = ", ".join(self.nodes[i].name[1:] for i in self.replica_ids) or "none"
        raise CommandError(
            f"{command}.replica",
            f"{command}: replica must be the number of a live replica: {allowed}; got {number}",
        )

    def on_kill_master(self, master: int) -> list[Event]:
        if master > len(self.masters):
            allowed = ", ".join(str(i + 1) for i in range(len(self.masters)))
            raise CommandError(
                "kill_master.master",
                f"kill_master: master must be one of {allowed}; got {master}",
            )
        if len(self.masters) == 1 and not self.replica_ids:
            raise CommandError(
                "kill_master",
                "kill_master: no live replica to promote; add_replica first",
            )
        return [self._failover(self.nodes[self.masters[master - 1]])]

    def on_kill_replica(self, replica: int) -> list[Event]:
        node = self._live_replica("kill_replica", replica)
        self._remove_node(node)
        return [
            {"type": "replication.kill_replica", "t": self.now, "replica": node.name}
        ]

    def on_pause_replica(self, replica: int, seconds: float) -> list[Event]:
        node = self._live_replica("pause_replica", replica)
        node.paused_until = max(node.paused_until, self.now + seconds)
        self._push(node.paused_until, RESUME, node.id)
        return [
            {
                "type": "replication.pause",
                "t": self.now,
                "replica": node.name,
                "seconds": seconds,
            }
        ]

    def on_add_replica(self) -> list[Event]:
        if len(self.replica_ids) >= MAX_REPLICAS:
            raise CommandError(
                "add_replica", f"add_replica: at most {MAX_REPLICAS} live replicas"
            )
        if len(self.nodes) >= MAX_NODES:
            raise CommandError(
                "add_replica", f"add_replica: at most {MAX_NODES} servers in one run"
            )
        node = self._new_replica()
        self._link()
        return [
            {"type": "replication.add_replica", "t": self.now, "replica": node.name}
        ]

    def on_write_burst(self, writes: int, duration_s: float) -> list[Event]:
        self.burst_gen += 1
        self.burst_rate = writes / duration_s
        self.burst_end = self.now + duration_s
        first = self.now + self.rng.expovariate(self.burst_rate)
        if first <= self.burst_end:
            self._push(first, BURST, self.burst_gen)
        return [
            {
                "type": "replication.write_burst",
                "t": self.now,
                "writes": writes,
                "duration_s": duration_s,
            }
        ]

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        if name == "read_rate":
            self._start_stream(READ)
        elif name == "write_rate":
            self._start_stream(WRITE)
        elif name in ("rows", "users"):
            self.seen.clear()  # its keys are user * rows + row
        elif name in ("replication", "write_quorum"):
            for origin in self.pending:
                if self.pending[origin]:
                    self._check_acks(origin, self.now)
        elif name == "topology":
            # Server ids start again: drop what was in flight between the old ones.
            self.heap = [e for e in self.heap if e[2] in (READ, WRITE, BURST)]
            heapify(self.heap)
            self._build_cluster()
            return [
                {
                    "type": "replication.topology",
                    "t": self.now,
                    "topology": self.p["topology"],
                }
            ]
        elif name == "replicas":
            events: list[Event] = []
            while (
                len(self.replica_ids) < self.p["replicas"]
                and len(self.nodes) < MAX_NODES
            ):
                events += self.on_add_replica()
            while len(self.replica_ids) > self.p["replicas"]:
                number = int(self.nodes[self.replica_ids[-1]].name[1:])
                events += self.on_kill_replica(number)
            return events
        return None
