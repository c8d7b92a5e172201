"""Closed forms for fleets of app servers: releases, sessions, auto-scaling.

Pure Python; the deploy, sessions and provisioning engines are checked against
these figures.
"""

from __future__ import annotations

from .availability import (
    instances_needed,
    mmck_utilization,
    scale_out_rounds,
    time_to_capacity_bounds,
)

# Releases --------------------------------------------------------------------


def deploy_min_capacity(strategy: str, servers: int, batch: int) -> int:
    """Return the fewest servers in service while a good release goes out.

    All at once stops every server; rolling takes ``batch`` out at a time (a
    capacity of 1 - batch/servers); blue/green switches to a full second fleet
    and atomic flips a symlink on running servers, so neither loses any.
    """
    if strategy == "all_at_once":
        return 0
    if strategy == "rolling":
        return max(0, servers - min(batch, servers))
    return servers


def deploy_peak_servers(strategy: str, servers: int) -> int:
    """Return the most servers running at once: blue/green runs two fleets."""
    return 2 * servers if strategy == "blue_green" else servers


def local_share_lost(servers: int) -> float:
    """Return the expected share of sessions lost when one of ``servers`` dies.

    With sessions in each server's memory and requests spread evenly, each server
    holds 1/n of them, and they die with it.
    """
    if servers < 1:
        raise ValueError(f"servers must be at least 1; got {servers!r}")
    return 1.0 / servers


# Sessions --------------------------------------------------------------------


def visit_requests(items: float, hit: float) -> float:
    """Return the mean requests of one visit: a login, ``items`` additions and a
    checkout, each session request finding its session with chance ``hit``.

    A session request that misses sends the user to log in again (one more
    request) and then to try again: each of the items + 1 session requests a
    visit needs takes 1/hit attempts and 1/hit - 1 logins on average (geometric).
    """
    if not 0 < hit <= 1:
        raise ValueError(f"hit must be in (0, 1]; got {hit!r}")
    return 1.0 + (items + 1.0) * (2.0 / hit - 1.0)


def user_request_rate(
    users: int, think_s: float, offline_s: float, items: float, hit: float
) -> float:
    """Return the requests per second of ``users`` who visit again and again.

    Renewal-reward: a cycle is a time offline and a visit whose requests are a
    think time apart; the rate is users x requests per cycle / mean cycle time.
    """
    per_visit = visit_requests(items, hit)
    return users * per_visit / (offline_s + (per_visit - 1.0) * think_s)


def forced_logout_rate(
    users: int, think_s: float, offline_s: float, items: float, hit: float
) -> float:
    """Return the forced logouts per second: the misses among session requests."""
    per_visit = visit_requests(items, hit)
    misses = (items + 1.0) * (1.0 / hit - 1.0)
    return users * misses / (offline_s + (per_visit - 1.0) * think_s)


def central_mean_latency_ms(app_ms: float, op_ms: float, items: float) -> float:
    """Return the mean latency with sessions in a central store (no misses).

    A login writes the session once; each of the items + 1 later requests reads
    and writes it: (1 + 2(items + 1)) store trips over items + 2 requests.
    """
    trips = (1.0 + 2.0 * (items + 1.0)) / (items + 2.0)
    return app_ms + op_ms * trips


# Auto-scaling ----------------------------------------------------------------


def instance_utilization(
    rate: float, instances: int, workers: int, service_s: float, queue: int
) -> float:
    """Return the share of workers busy when ``rate`` is split evenly over
    ``instances`` M/M/c/K servers (c workers, c + queue places).

    Round robin splits Poisson traffic into more regular streams than Poisson,
    so this drops a little more than the engine does; below capacity both are
    the offered load over the capacity to within a fraction of a percent.
    """
    return mmck_utilization(rate / instances, 1.0 / service_s, workers, workers + queue)


def spike_time_to_capacity(
    *,
    spike_rate: float,
    instance_rps: float,
    in_service: int,
    desired: int,
    step: int,
    max_instances: int,
    check_s: float,
    cooldown_s: float,
    boot_min_s: float,
    boot_max_s: float,
) -> tuple[float, float] | str:
    """Return (lo, hi) for the time from a spike until capacity carries it, or a
    sentence saying why it never does.

    ``in_service`` and ``desired`` (in service plus booting) are counted when the
    spike starts.
    """
    needed = instances_needed(spike_rate, instance_rps)
    if needed <= in_service:
        return 0.0, 0.0
    if needed > max_instances:
        return (
            f"the spike needs {needed} instances but the group stops at "
            f"{max_instances}: capacity never catches up"
        )
    rounds = scale_out_rounds(needed, desired, step)
    if not rounds:
        return 0.0, boot_max_s  # enough are booting already
    return time_to_capacity_bounds(rounds, check_s, cooldown_s, boot_min_s, boot_max_s)


__all__ = [
    "central_mean_latency_ms",
    "deploy_min_capacity",
    "deploy_peak_servers",
    "forced_logout_rate",
    "instance_utilization",
    "local_share_lost",
    "spike_time_to_capacity",
    "user_request_rate",
    "visit_requests",
]
