"""Replication lag when a replica applies writes one at a time (pure Python).

The model: writes are committed on the master as a Poisson stream of rate
``write_rate``; each reaches the replica after a fixed ``delay`` (so they still
arrive as a Poisson stream) and waits its turn; applying one takes an
exponential time of mean 1 / ``apply_rate``. The replica is then an M/M/1 queue,
and a write's lag (commit on the master to apply on the replica) is the delay
plus its time in that queue, which is exponential with rate
``apply_rate - write_rate``. When ``write_rate >= apply_rate`` the queue never
empties for good and the lag grows without bound.
"""

from __future__ import annotations

import math


def replica_mean_lag(write_rate: float, apply_rate: float, delay: float) -> float:
    """Return the mean lag in seconds: delay + 1 / (apply_rate - write_rate), or inf."""
    if write_rate >= apply_rate:
        return math.inf
    return delay + 1.0 / (apply_rate - write_rate)


def replica_lag_quantile(
    q: float, write_rate: float, apply_rate: float, delay: float
) -> float:
    """Return the ``q`` quantile of the lag in seconds (0 < q < 1), or inf."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be between 0 and 1; got {q!r}")
    if write_rate >= apply_rate:
        return math.inf
    return delay - math.log1p(-q) / (apply_rate - write_rate)


def backlog_growth_rate(write_rate: float, apply_rate: float) -> float:
    """Return how fast the lag grows (seconds per second) past saturation, else 0.

    With more writes than a replica can apply, its queue grows by
    write_rate - apply_rate writes a second, and a write arriving at time t waits
    for about that backlog: (write_rate - apply_rate) t / apply_rate.
    """
    return max(0.0, (write_rate - apply_rate) / apply_rate)


def master_master_mean_lag(
    write_rate: float,
    apply_rate: float,
    delay: float,
    replicas: int,
    first_share: float = 0.5,
) -> float:
    """Return the mean lag in seconds over every apply of a master-master pair.

    The first master takes ``first_share`` of the writes, the second the rest;
    each master applies the other's writes (an M/M/1 queue of that rate), and the
    ``replicas`` follow the first master: they get its own writes after one hop
    and the second master's after two (the first master's queue, then theirs).
    By Burke's theorem the first master's output is Poisson again, so every queue
    is M/M/1 and the mean lags add along each path. Return inf when any queue is
    at or past its apply rate.
    """
    first = write_rate * first_share
    second = write_rate - first
    rates = (first, second) + ((write_rate,) if replicas else ())
    if max(rates) >= apply_rate:
        return math.inf
    on_first = delay + 1.0 / (apply_rate - second)  # the second's writes, on m1
    on_second = delay + 1.0 / (apply_rate - first)  # the first's writes, on m2
    on_replica = 1.0 / (apply_rate - write_rate) if replicas else 0.0
    total = second * on_first + first * on_second
    total += replicas * (
        first * (delay + on_replica) + second * (on_first + delay + on_replica)
    )
    applies = write_rate * (1 + replicas)
    return total / applies if applies else 0.0


# Quorums --------------------------------------------------------------------
#
# N copies; a write is confirmed once W of them have it, and a read asks R
# different copies and keeps the newest version. If R + W > N, every read set
# shares at least one copy with every write set (pigeonhole), so a read always
# meets the latest confirmed write (Gifford 1979, "Weighted voting for
# replicated data"; Dynamo, DeCandia et al. 2007).


def quorums_overlap(copies: int, write_quorum: int, read_quorum: int) -> bool:
    """Return whether every read set of R copies meets every write set of W."""
    w = min(write_quorum, copies)
    r = min(read_quorum, copies)
    return r + w > copies


def smallest_fresh_read_quorum(copies: int, write_quorum: int) -> int:
    """Return the smallest R that makes R + W > N: N - W + 1 (at least 1)."""
    return max(1, copies - min(write_quorum, copies) + 1)


def quorum_miss_chance(copies: int, have: int, read_quorum: int) -> float:
    """Return the chance that R copies drawn at random miss all ``have`` holders.

    The hypergeometric zero: C(N - have, R) / C(N, R). Right after a write is
    confirmed exactly W copies hold it, so this is the chance a read then is
    stale; it is 0 exactly when R + have > N.
    """
    r = min(read_quorum, copies)
    return math.comb(copies - have, r) / math.comb(copies, r)


def read_back_miss_chance(
    write_rate: float, apply_rate: float, delay: float, after: float
) -> float:
    """Return the chance a replica has not applied a write ``after`` s past its commit.

    The lag is ``delay`` plus an exponential sojourn of rate apply_rate - write_rate,
    so P(lag > after) is 1 before the delay and exp(-(mu - lambda)(after - delay))
    from then on; 1 when the replica cannot keep up.
    """
    if write_rate >= apply_rate or after <= delay:
        return 1.0
    return math.exp(-(apply_rate - write_rate) * (after - delay))
