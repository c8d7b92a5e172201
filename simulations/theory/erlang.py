"""Erlang's formulas for M/M/c queues (pure Python).

The model: jobs arrive as a Poisson stream of rate ``arrival_rate``; ``servers``
identical servers each take exponential service times of rate
``service_rate``; jobs wait in one first-come-first-served queue of unbounded
length. The offered load is ``a = arrival_rate / service_rate`` (in Erlangs) and
the queue is stable only when ``a < servers``.
"""

from __future__ import annotations

import math


def erlang_b(servers: int, offered: float) -> float:
    """Return the Erlang B blocking probability (M/M/c/c: no waiting room).

    Uses the stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)).
    """
    if servers < 0 or offered < 0:
        raise ValueError("servers and offered load must be >= 0")
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return b


def erlang_c(servers: int, offered: float) -> float:
    """Return the probability that an arriving job has to wait (M/M/c).

    C(c, a) = c B / (c - a (1 - B)) with B = erlang_b(c, a); 1 when a >= c,
    where every job eventually waits.
    """
    if servers <= 0:
        return 1.0
    if offered >= servers:
        return 1.0
    b = erlang_b(servers, offered)
    return servers * b / (servers - offered * (1.0 - b))


def mmc_mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Return the mean time a job waits before its service starts (M/M/c).

    W_q = C(c, a) / (c mu - lambda); infinite when the queue is unstable.
    """
    offered = arrival_rate / service_rate
    if offered >= servers:
        return math.inf
    return erlang_c(servers, offered) / (servers * service_rate - arrival_rate)


def mmc_mean_queue_length(
    arrival_rate: float, service_rate: float, servers: int
) -> float:
    """Return the mean number of jobs waiting (not in service): L_q = lambda W_q."""
    return arrival_rate * mmc_mean_wait(arrival_rate, service_rate, servers)


def mmc_utilization(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Return the share of time a server is busy: rho = lambda / (c mu), at most 1."""
    return min(1.0, arrival_rate / (servers * service_rate))


def md1_mean_wait(arrival_rate: float, service_time: float) -> float:
    """Return the mean wait in an M/D/1 queue (one server, fixed service time).

    Pollaczek-Khinchine with no variance of service: W_q = rho s / (2 (1 - rho)).
    """
    rho = arrival_rate * service_time
    if rho >= 1:
        return math.inf
    return rho * service_time / (2.0 * (1.0 - rho))
