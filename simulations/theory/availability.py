"""Availability of the application tier: failover, server capacity, boot times.

Pure Python; the failover, scaling and provisioning engines are checked against
these figures.
"""

from __future__ import annotations

import math

# Failover --------------------------------------------------------------------


def detection_bounds(interval_s: float, missed: int) -> tuple[float, float]:
    """Return (lo, hi): the standby notices a death after more than lo, at most hi.

    The standby gives up ``missed`` intervals after the last beat it heard. The
    active dies somewhere in the interval after its last beat, so the silence it
    leaves before the deadline lies in ((missed - 1) x interval, missed x interval].
    """
    return (missed - 1) * interval_s, missed * interval_s


def failover_outage_bounds(
    interval_s: float, missed: int, takeover_s: float
) -> tuple[float, float]:
    """Return the bounds of one outage: detection plus the takeover."""
    lo, hi = detection_bounds(interval_s, missed)
    return lo + takeover_s, hi + takeover_s


def mean_failover_outage(interval_s: float, missed: int, takeover_s: float) -> float:
    """Return the mean outage when deaths fall at a uniform phase of the beat."""
    return (missed - 0.5) * interval_s + takeover_s


def failover_outage_sd(interval_s: float) -> float:
    """Return the standard deviation of one outage (uniform over one interval)."""
    return interval_s / math.sqrt(12.0)


def expected_dropped(rate: float, outage_s: float) -> tuple[float, float]:
    """Return the mean and standard deviation of the requests lost in an outage.

    Poisson arrivals during a window whose length does not depend on them: the
    count is Poisson with mean rate x outage.
    """
    mean = rate * outage_s
    return mean, math.sqrt(mean)


def availability(outage_s: float, period_s: float) -> float:
    """Return the share of ``period_s`` that was not outage."""
    return 1.0 - outage_s / period_s


# Servers with workers and a queue (M/M/c/K) ----------------------------------


def mmck_distribution(lam: float, mu: float, c: int, k: int) -> list[float]:
    """Return P(n requests in the system), n = 0..k, for an M/M/c/K server.

    ``c`` workers each serve at rate ``mu``; at most ``k`` >= ``c`` requests fit
    (working or waiting); an arrival that finds ``k`` is dropped.
    """
    if not (c >= 1 and k >= c):
        raise ValueError("need 1 <= c <= k")
    a = lam / mu
    weights = [1.0]
    for n in range(1, k + 1):
        weights.append(weights[-1] * a / min(n, c))
    total = math.fsum(weights)
    return [w / total for w in weights]


def mmck_blocking(lam: float, mu: float, c: int, k: int) -> float:
    """Return the share of arrivals dropped by an M/M/c/K server (PASTA)."""
    return mmck_distribution(lam, mu, c, k)[-1]


def mmck_utilization(lam: float, mu: float, c: int, k: int) -> float:
    """Return the mean share of the ``c`` workers that are busy."""
    return lam * (1.0 - mmck_blocking(lam, mu, c, k)) / (c * mu)


# Auto-scaling ----------------------------------------------------------------


def instances_needed(rate: float, instance_rps: float) -> int:
    """Return the fewest instances whose capacity covers ``rate``."""
    return max(1, math.ceil(rate / instance_rps - 1e-9))


def scale_out_rounds(needed: int, start: int, step: int) -> int:
    """Return the scaling actions that take ``start`` instances to ``needed``."""
    return max(0, math.ceil((needed - start) / step))


def time_to_capacity_bounds(
    rounds: int,
    check_s: float,
    cooldown_s: float,
    boot_min_s: float,
    boot_max_s: float,
) -> tuple[float, float]:
    """Return (lo, hi) for the time from a spike to enough instances in service.

    The scaler looks at the CPU every ``check_s`` seconds over the interval just
    ended. The first check that sees a whole overloaded interval comes at most
    2 x check_s after the spike; each further action waits for the cooldown and
    the next check, and the last batch then boots. No action can come sooner
    than a cooldown after the previous one, and no instance serves before it
    has booted.
    """
    if rounds <= 0:
        return 0.0, 0.0
    lo = (rounds - 1) * cooldown_s + boot_min_s
    hi = 2 * check_s + (rounds - 1) * (cooldown_s + check_s) + boot_max_s
    return lo, hi


def outage_per_death(
    standby: bool,
    interval_s: float,
    missed: int,
    takeover_s: float,
    repair_s: float,
) -> float:
    """Return the mean outage a death of the active balancer causes.

    With a ready standby it is the failover (detection plus takeover); without
    one the virtual IP is held again only when the balancer is repaired.
    """
    if standby:
        return mean_failover_outage(interval_s, missed, takeover_s)
    return repair_s


def dropped_per_death(rate: float, outage_s: float, service_s: float) -> float:
    """Return the mean requests a death loses: those arriving in the outage, and
    the connections it cuts (by Little's law, rate x service time in flight).
    """
    return expected_dropped(rate, outage_s)[0] + rate * service_s
