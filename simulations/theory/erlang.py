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


# A waiting room of finite size (M/M/c/K) --------------------------------------

_DIRECT_SUMS = 20_000  # waiting places summed term by term; more in closed form


def _geometric_sums(ratio: float, places: int) -> tuple[float, float, float]:
    """Return (sum r^k, sum k r^k, r^m) for k = 0..m, scaled by 1 / max(1, r^m).

    Scaling by the largest term keeps an overloaded queue with a million places
    finite; the scale is the third figure's complement (r^m or 1).
    """
    m = places
    if ratio <= 1.0:
        r, top = ratio, ratio**m if ratio > 0 else (1.0 if m == 0 else 0.0)
        scale_up = False
    else:
        r, top = 1.0 / ratio, 1.0
        scale_up = True
    if m <= _DIRECT_SUMS or abs(1.0 - r) < 1e-9:
        if abs(1.0 - r) < 1e-9:
            s0, s1 = m + 1.0, m * (m + 1) / 2.0
        else:
            s0 = s1 = 0.0
            term = 1.0
            for k in range(m + 1):
                s0 += term
                s1 += k * term
                term *= r
                if term < 1e-300:
                    break
    else:
        rm = math.exp(m * math.log(r)) if r > 0 else 0.0
        s0 = -math.expm1((m + 1) * math.log(r)) / (1.0 - r) if r > 0 else 1.0
        s1 = r * (1.0 - (m + 1) * rm + m * rm * r) / (1.0 - r) ** 2
    if scale_up:
        # Terms r^k of the overloaded queue are (1/r)^(m-k) / scale: sum k ratio^k
        # becomes sum (m - j) r^j.
        s1 = m * s0 - s1
    return s0, s1, top


def mmck_figures(
    arrival_rate: float, service_rate: float, servers: int, places: int
) -> dict[str, float]:
    """Return the steady state of an M/M/c/K queue with K = servers + places.

    ``places`` jobs may wait; an arrival finding them all taken is turned away.
    The figures: ``blocking`` (share turned away), ``p_wait`` (share of the
    accepted that wait), ``mean_wait_s`` (of the accepted), ``mean_queue_length``,
    ``utilization`` and ``throughput_per_s``. Kleinrock, Queueing Systems I,
    section 3.7; work in O(1) for any size of waiting room above 20,000.
    """
    if servers < 1 or places < 0:
        raise ValueError("need servers >= 1 and places >= 0")
    a = arrival_rate / service_rate
    ratio = a / servers
    s0, s1, top = _geometric_sums(ratio, places)
    # P(n)/P(c) for n < c sums to 1/B(c, a) - 1; under overload everything is
    # divided by ratio^m as the geometric sums are.
    b_full = erlang_b(servers, a)
    if b_full == 0.0:
        # So light a load that a full house never happens in double precision.
        lam = arrival_rate
        return {
            "blocking": 0.0,
            "p_wait": 0.0,
            "mean_wait_s": 0.0,
            "mean_queue_length": 0.0,
            "utilization": lam / (servers * service_rate),
            "throughput_per_s": lam,
        }
    below = 1.0 / b_full - 1.0
    if ratio > 1.0:
        log_scale = places * math.log(ratio)
        below = math.exp(math.log(below) - log_scale) if below > 0 else 0.0
    norm = below + s0
    blocking = top / norm
    accepted = 1.0 - blocking
    lq = s1 / norm
    lam_in = arrival_rate * accepted
    return {
        "blocking": blocking,
        "p_wait": (s0 - top) / norm / accepted if accepted > 0 else 1.0,
        "mean_wait_s": lq / lam_in if lam_in > 0 else math.inf,
        "mean_queue_length": lq,
        "utilization": min(1.0, lam_in / (servers * service_rate)),
        "throughput_per_s": lam_in,
    }


# Impatient users: a fixed timeout (M/M/c+D) -----------------------------------


def _int_exp(b: float, x: float) -> float:
    """Return the integral of e^(b u) for u from 0 to x."""
    if abs(b * x) < 1e-12:
        return x
    return math.expm1(b * x) / b


def _int_u_exp(b: float, x: float) -> float:
    """Return the integral of u e^(b u) for u from 0 to x."""
    if abs(b * x) < 1e-6:
        return x * x / 2.0 + b * x**3 / 3.0
    return (x * math.exp(b * x) - _int_exp(b, x)) / b


def mmc_timeout_figures(
    arrival_rate: float, service_rate: float, servers: int, patience: float
) -> dict[str, float]:
    """Return the steady state of an M/M/c queue whose users leave after waiting
    ``patience`` seconds for a server (M/M/c+D), with unlimited waiting room.

    A user still waiting at the timeout leaves; one whose work started stays to
    its end. The virtual wait V has density f(x) = lambda P(c-1) e^(lambda min(x,
    D) - c mu x) for x > 0 (Baccelli and Hebuterne 1981; Zeltyn and Mandelbaum,
    "Call centers with impatient customers", Queueing Systems 51, 2005), so
    P(wait) = P(V > 0) and P(give up) = P(V >= D). ``mean_response_s`` is the
    mean of min(wait + service, D) with D for those who gave up, as a user who
    stops waiting at the timeout sees it. Any load has a steady state: the
    timeout bounds the queue.
    """
    lam, mu, c, d = arrival_rate, service_rate, servers, patience
    a = lam / mu
    b = lam - c * mu
    # Everything relative to P(c-1): the states with a free server sum to
    # 1 / B(c-1, a) of it. Under overload (b > 0) divide also by e^(b D) so that
    # no term overflows.
    shift = b * d if b > 0 else 0.0
    b_free = erlang_b(c - 1, a)
    if b_free == 0.0:
        # So light a load that no user ever waits in double precision.
        return {
            "p_wait": 0.0,
            "p_timeout_waiting": 0.0,
            "mean_wait_s": 0.0,
            "mean_queue_length": 0.0,
            "utilization": lam / (c * mu),
            "throughput_per_s": lam,
            "mean_response_s": -math.expm1(-mu * d) / mu,
        }
    free = 1.0 / b_free
    free = math.exp(math.log(free) - shift) if shift else free
    # Mass of f on (0, D) and on [D, inf), times e^-shift, over lambda P(c-1).
    if b > 0:
        inside = -math.expm1(-b * d) / b
        first = d / b + math.expm1(-b * d) / (b * b)  # of u e^(b u) e^-shift
    else:
        inside = _int_exp(b, d)
        first = _int_u_exp(b, d)
    tail = math.exp(b * d - shift) / (c * mu)
    norm = free + lam * (inside + tail)
    waits = lam * (inside + tail) / norm
    gives_up = lam * tail / norm
    starts_waiting = lam * inside / norm
    served = 1.0 - gives_up
    wait_of_served = lam * first / norm  # E[V; 0 < V < D]
    # E[min(V + S, D); V < D] = E[V + (1 - e^(-mu (D - V))) / mu; V < D].
    late_cut = -math.expm1(-mu * d) / mu
    # lambda e^(-mu D) int_0^D e^((b + mu) u) du: those who wait x and then
    # reach the timeout while at work; under overload divided by e^(b D).
    if b > 0:
        ramp = lam * -math.expm1(-(b + mu) * d) / (b + mu) / norm
    else:
        ramp = lam * math.exp(-mu * d) * _int_exp(b + mu, d) / norm
    response = (
        free / norm * late_cut
        + wait_of_served
        + (starts_waiting - ramp) / mu
        + gives_up * d
    )
    time_in_queue = wait_of_served + gives_up * d
    return {
        "p_wait": waits,
        "p_timeout_waiting": gives_up,
        "mean_wait_s": wait_of_served / served if served > 0 else math.inf,
        "mean_queue_length": lam * time_in_queue,
        "utilization": min(1.0, lam * served / (c * mu)),
        "throughput_per_s": lam * served,
        "mean_response_s": response,
    }


def mmc_poll_figures(
    arrival_rate: float,
    service_rate: float,
    servers: int,
    period: float,
    head_start: float = 0.0,
) -> dict[str, float]:
    """Return what pages polling for their job's result cost and wait, in M/M/c.

    A page answered ``head_start`` seconds after its job arrived asks at
    ``head_start + k period`` (k = 1, 2, ...) until a poll finds the job done.
    The time to done is T = W + S: S exponential at ``service_rate`` and W, by
    Erlang C, 0 or (with the chance of waiting C) exponential at
    theta = c mu - lambda. The polls a page makes are 1 + sum over k >= 1 of
    P(T > head_start + k period), geometric sums here; the wait for the
    successful poll is k period - (T - head_start) on average.
    """
    lam, mu, c, p, e = arrival_rate, service_rate, servers, period, head_start
    wait_chance = erlang_c(c, lam / mu)
    theta = c * mu - lam

    def beyond(rate: float) -> float:
        # sum over k >= 1 of exp(-rate (e + k p))
        return math.exp(-rate * (e + p)) / -math.expm1(-rate * p)

    if abs(theta - mu) < 1e-12 * mu:
        # S + W with equal rates is Erlang-2: P(T > x) = (1 + mu x) exp(-mu x)
        q = math.exp(-mu * p)
        tail = beyond(mu) * (1 + mu * e) + mu * p * math.exp(-mu * e) * q / (1 - q) ** 2
    else:
        tail = (theta * beyond(mu) - mu * beyond(theta)) / (theta - mu)
    polls = 1.0 + (1 - wait_chance) * beyond(mu) + wait_chance * tail
    done_after = 1 / mu + wait_chance / theta - e
    return {
        "polls_per_job": polls,
        "status_requests_per_s": lam * polls,
        "result_delay_s": p * polls - done_after,
    }
