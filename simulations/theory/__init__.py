"""Closed-form results the engines are checked against (pure Python).

Each function states the model it holds for; tests compare long seeded runs of
the engines with these figures.
"""

from __future__ import annotations

import math
from functools import lru_cache


@lru_cache(maxsize=16)
def zipf_probabilities(keys: int, s: float) -> tuple[float, ...]:
    """Return the popularity of keys 0..keys-1 under Zipf(s): p_i ∝ 1/(i+1)^s."""
    weights = [1.0 / (i + 1) ** s for i in range(keys)]
    total = math.fsum(weights)
    return tuple(w / total for w in weights)


def che_hit_ratio(probabilities: tuple[float, ...] | list[float], capacity: int) -> float:
    """Return the LRU hit ratio by Che's approximation (independent requests).

    The characteristic time T solves sum(1 - exp(-p_i T)) = capacity; a key is
    in the cache with probability 1 - exp(-p_i T).
    """
    n = len(probabilities)
    if capacity >= n:
        return 1.0
    if capacity <= 0:
        return 0.0

    def occupancy(t: float) -> float:
        return math.fsum(-math.expm1(-p * t) for p in probabilities)

    lo, hi = 0.0, 1.0
    while occupancy(hi) < capacity:
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if occupancy(mid) < capacity:
            lo = mid
        else:
            hi = mid
    t = (lo + hi) / 2
    return math.fsum(p * -math.expm1(-p * t) for p in probabilities)


def lfu_hit_ratio(probabilities: tuple[float, ...] | list[float], capacity: int) -> float:
    """Return the ideal LFU hit ratio: the sum of the ``capacity`` largest popularities."""
    return math.fsum(sorted(probabilities, reverse=True)[:capacity])
