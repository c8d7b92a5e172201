"""Queueing and routing results the balancer and sessions engines are checked against.

Pure Python. Rates are per second; times are in seconds. ``lam`` is the arrival
rate at one server and ``mu`` one server's service rate, so ``rho = lam / mu``.
"""

from __future__ import annotations

import math


def _check_stable(lam: float, mu: float) -> float:
    if not (lam >= 0 and mu > 0):
        raise ValueError(f"need lam >= 0 and mu > 0; got lam={lam!r}, mu={mu!r}")
    rho = lam / mu
    if rho >= 1:
        raise ValueError(f"the queue is unstable: rho = lam/mu = {rho:g} >= 1")
    return rho


def mm1_mean_time(lam: float, mu: float) -> float:
    """Return the mean time in system of an M/M/1 queue: 1 / (mu - lam)."""
    _check_stable(lam, mu)
    return 1.0 / (mu - lam)


def mm1_mean_number(lam: float, mu: float) -> float:
    """Return the mean number in system of an M/M/1 queue: rho / (1 - rho)."""
    rho = _check_stable(lam, mu)
    return rho / (1.0 - rho)


def mm1k_distribution(lam: float, mu: float, k: int) -> list[float]:
    """Return P(n in system), n = 0..k, of an M/M/1/K queue holding at most ``k``.

    The stationary law is geometric, truncated at ``k``: p_n ∝ rho^n.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k!r}")
    if not (lam >= 0 and mu > 0):
        raise ValueError(f"need lam >= 0 and mu > 0; got lam={lam!r}, mu={mu!r}")
    rho = lam / mu
    weights = [rho**n for n in range(k + 1)]
    total = math.fsum(weights)
    return [w / total for w in weights]


def mm1k_blocking(lam: float, mu: float, k: int) -> float:
    """Return the share of arrivals an M/M/1/K queue turns away (PASTA: p_k)."""
    return mm1k_distribution(lam, mu, k)[k]


def mm1k_mean_time(lam: float, mu: float, k: int) -> float:
    """Return the mean time in system of the requests an M/M/1/K queue admits.

    Little's law over admitted requests: L / (lam * (1 - p_k)).
    """
    p = mm1k_distribution(lam, mu, k)
    number = math.fsum(n * pn for n, pn in enumerate(p))
    return number / (lam * (1.0 - p[k]))


def supermarket_tail(rho: float, d: int, i: int) -> float:
    """Return s_i, the share of servers with at least ``i`` requests, as n -> inf.

    Mitzenmacher's supermarket model (JSQ(d)): n servers, Poisson arrivals at
    rate n*lam, each request samples ``d`` servers and joins the one with the
    fewest requests. The fixed point of the mean-field equations is
    s_i = rho^((d^i - 1) / (d - 1)), and s_i = rho^i for d = 1 (M/M/1).
    """
    if d == 1:
        return rho**i
    return rho ** ((d**i - 1) // (d - 1))


def supermarket_mean_number(rho: float, d: int = 2) -> float:
    """Return the mean number of requests per server in the supermarket model.

    E[N] = sum_{i>=1} P(N >= i) = sum_{i>=1} s_i; for d = 2 that is
    sum_{i>=1} rho^(2^i - 1). The terms fall doubly exponentially, so the sum
    stops once they are below 1e-16 of the total.
    """
    if not 0 <= rho < 1:
        raise ValueError(f"rho must be from 0 to less than 1; got {rho!r}")
    if d < 1:
        raise ValueError(f"d must be at least 1; got {d!r}")
    total = 0.0
    i = 1
    while True:
        term = supermarket_tail(rho, d, i)
        total += term
        if term <= 1e-16 * max(total, 1e-300) or i > 10_000:
            return total
        i += 1


def supermarket_mean_time(lam: float, mu: float, d: int = 2) -> float:
    """Return the mean time in system of the supermarket model as n -> inf.

    By Little's law per server, T = E[N] / lam = sum_{i>=1} rho^((d^i-1)/(d-1)) / lam,
    which is the same as (1/mu) * sum_{i>=1} rho^((d^i - d)/(d - 1)). For d = 1
    it gives the M/M/1 figure 1 / (mu - lam).
    """
    rho = _check_stable(lam, mu)
    if lam == 0:
        return 1.0 / mu
    return supermarket_mean_number(rho, d) / lam


def round_robin_move_probability(servers: int) -> float:
    """Return the chance a user's next request lands on another server: (N-1)/N.

    With round robin over N servers and many users interleaved, the position of
    a user's next request in the rotation is uniform, so it meets the server
    that served the previous one with probability 1/N.
    """
    if servers < 1:
        raise ValueError(f"servers must be at least 1; got {servers!r}")
    return (servers - 1) / servers


def mg1_mean_time(lam: float, mean_service: float, second_moment: float) -> float:
    """Return the mean time in system of an M/G/1 queue (Pollaczek-Khinchine).

    T = E[S] + lam E[S^2] / (2 (1 - rho)) with rho = lam E[S]; the waiting room
    is unbounded.
    """
    if mean_service <= 0 or second_moment <= 0:
        raise ValueError("the service time's moments must be positive")
    _check_stable(lam, 1.0 / mean_service)
    rho = lam * mean_service
    return mean_service + lam * second_moment / (2.0 * (1.0 - rho))


def ekm1_sigma(k: int, lam: float, mu: float) -> float:
    """Return sigma, the GI/M/1 root, for Erlang-``k`` interarrivals of rate ``lam``.

    A server that gets every k-th request of a Poisson stream of rate k*lam sees
    interarrival times Erlang(k) with mean 1/lam, whose Laplace transform is
    A*(s) = (k lam / (k lam + s))^k. sigma is the root in (0, 1) of
    sigma = A*(mu (1 - sigma)) (Kleinrock, Queueing Systems vol. 1, 1975, 6.4);
    k = 1 gives sigma = rho. Found by bisection: f(sigma) = A* - sigma is above 0
    below the root and below 0 between it and 1.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k!r}")
    rho = _check_stable(lam, mu)
    if lam == 0:
        return 0.0
    rate = k * lam

    def f(sigma: float) -> float:
        return (rate / (rate + mu * (1.0 - sigma))) ** k - sigma

    lo, hi = 0.0, 1.0 - 1e-12 * max(1.0, 1.0 / (1.0 - rho))
    if f(hi) >= 0:  # so near 1 that floats cannot tell: rho is the k = 1 answer
        return rho
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def ekm1_mean_time(k: int, lam: float, mu: float) -> float:
    """Return the mean time in system of an E_k/M/1 queue: 1 / (mu (1 - sigma)).

    Round robin over k equal servers fed by Poisson arrivals gives each server
    exactly this queue: every k-th request, so Erlang-k gaps between them.
    """
    return 1.0 / (mu * (1.0 - ekm1_sigma(k, lam, mu)))
