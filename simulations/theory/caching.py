"""Cache hit ratios: closed forms, approximations and the one-pass LRU curve.

The closed forms hold for the independent reference model: every request is for
key ``i`` with probability ``p_i``, independently of the others (the cache
engine's workload: keys drawn from a Zipf law).

``lru_curve`` is exact for any request stream: it computes, in one pass, the LRU
hit ratio of every cache size at once, using Mattson's stack property (an LRU
cache of size C hits exactly the requests whose stack distance is at most C).
``hit_ratio_curve`` runs it on the engine's own workload; it is what the
background "hit ratio for every cache size" job calls.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from functools import lru_cache

from ..sampling import zipf_cdf

MAX_CURVE_REQUESTS = 2_000_000  # bounds the job's memory (two int arrays) and time
MAX_CURVE_KEYS = 1_000_000

Progress = Callable[[int, int], object]


class CurveError(ValueError):
    """A bad argument of the curve functions, naming the field and its allowed values."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@lru_cache(maxsize=16)
def zipf_probabilities(keys: int, s: float) -> tuple[float, ...]:
    """Return the popularity of keys 0..keys-1 under Zipf(s): p_i ∝ 1/(i+1)^s."""
    weights = [1.0 / (i + 1) ** s for i in range(keys)]
    total = math.fsum(weights)
    return tuple(w / total for w in weights)


# Zipf sums over many keys: the hottest _HEAD keys one by one, the rest in groups
# of keys whose popularities differ by less than 0.4 % (ranks a..b with
# b < a * _RATIO), each group's total from the Euler-Maclaurin formula. A group
# stands for its keys by their mean popularity, which moves the hit ratio by
# under 1e-6: a million keys become about 2,700 terms.
_HEAD = 1000
_RATIO = 1.004
_NEWTON_STEPS = 200


def _power_sum(a: int, b: int, s: float) -> float:
    """Return sum(i ** -s for i in a..b) by Euler-Maclaurin (accurate for a >= 100)."""
    span = math.log(b / a)
    u = (1.0 - s) * span
    head = a ** (1.0 - s)
    if abs(u) < 1e-9:
        integral = head * span * (1.0 + u / 2.0)
    else:
        integral = head * math.expm1(u) / (1.0 - s)
    fa, fb = a**-s, b**-s
    return (
        integral
        + (fa + fb) / 2.0
        + s / 12.0 * (fa / a - fb / b)
        - s * (s + 1.0) * (s + 2.0) / 720.0 * (fa / a**3 - fb / b**3)
    )


@lru_cache(maxsize=32)
def zipf_groups(keys: int, s: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return (sizes, popularities) of groups of Zipf(s) keys of near-equal popularity.

    Group j holds sizes[j] keys, each read with probability popularities[j]; the
    hottest keys are groups of one, so sums over groups equal sums over keys to
    within 1e-6 for any smooth function of a key's popularity.
    """
    head = min(keys, _HEAD)
    sizes = [1.0] * head
    weights = [(i + 1) ** -s for i in range(head)]
    a = head + 1
    while a <= keys:
        b = min(keys, max(a, int(a * _RATIO)))
        sizes.append(float(b - a + 1))
        weights.append(_power_sum(a, b, s) / (b - a + 1))
        a = b + 1
    total = math.fsum(n * w for n, w in zip(sizes, weights, strict=True))
    return tuple(sizes), tuple(w / total for w in weights)


def _characteristic_time(
    occupancy: Callable[[float], tuple[float, float]], capacity: float
) -> float:
    """Return T with occupancy(T) = capacity, for a concave increasing occupancy.

    ``occupancy(t)`` returns the value and its slope. Every occupancy here is 0
    at 0 with slope 1 (the popularities add up to 1) and concave, so Newton's
    method from 0 climbs to the root from below without overshooting it.
    """
    t = 0.0
    for _ in range(_NEWTON_STEPS):
        value, slope = occupancy(t)
        if slope <= 0.0:
            break
        step = (capacity - value) / slope
        t += step
        if step <= 1e-13 * t:
            break
    return t


def _che(sizes: Sequence[float], probs: Sequence[float], capacity: float) -> float:
    pairs = list(zip(sizes, probs, strict=True))

    def occupancy(t: float) -> tuple[float, float]:
        value = slope = 0.0
        for n, p in pairs:
            e = math.exp(-p * t)
            value += n * (1.0 - e)
            slope += n * p * e
        return value, slope

    t = _characteristic_time(occupancy, capacity)
    return math.fsum(n * p * -math.expm1(-p * t) for n, p in pairs)


def _fifo(sizes: Sequence[float], probs: Sequence[float], capacity: float) -> float:
    pairs = list(zip(sizes, probs, strict=True))

    def occupancy(t: float) -> tuple[float, float]:
        value = slope = 0.0
        for n, p in pairs:
            d = 1.0 / (1.0 + p * t)
            value += n * p * t * d
            slope += n * p * d * d
        return value, slope

    t = _characteristic_time(occupancy, capacity)
    return math.fsum(n * p * (p * t / (1.0 + p * t)) for n, p in pairs)


def che_hit_ratio(
    probabilities: tuple[float, ...] | list[float], capacity: int
) -> float:
    """Return the LRU hit ratio by Che's approximation (independent requests).

    The characteristic time T solves sum(1 - exp(-p_i T)) = capacity; a key is
    in the cache with probability 1 - exp(-p_i T) (Che, Tung and Wang, 2002;
    Fricker, Robert and Roberts, 2012).
    """
    if capacity >= len(probabilities):
        return 1.0
    if capacity <= 0:
        return 0.0
    return _che([1.0] * len(probabilities), probabilities, capacity)


def fifo_hit_ratio(
    probabilities: tuple[float, ...] | list[float], capacity: int
) -> float:
    """Return the FIFO (and RANDOM) hit ratio by the characteristic-time approximation.

    Under independent requests FIFO and RANDOM eviction have the same hit ratio
    (Gelenbe, 1973). An entry stays a time of mean T whatever happens to it, so key
    i is cached with probability p_i T / (1 + p_i T), with T chosen so that these
    add up to the capacity (Dan and Towsley, 1990; Fricker, Robert and Roberts,
    2012; Martina et al., 2014).
    """
    if capacity >= len(probabilities):
        return 1.0
    if capacity <= 0:
        return 0.0
    return _fifo([1.0] * len(probabilities), probabilities, capacity)


def lfu_hit_ratio(
    probabilities: tuple[float, ...] | list[float], capacity: int
) -> float:
    """Return the ideal LFU hit ratio: the sum of the ``capacity`` largest popularities."""
    return math.fsum(sorted(probabilities, reverse=True)[:capacity])


def ttl_hit_ratio(
    probabilities: tuple[float, ...] | list[float], read_rate: float, ttl: float
) -> float:
    """Return the hit ratio of an unbounded cache whose entries expire ``ttl`` after a miss.

    Key i is read as a Poisson stream of rate r_i = p_i * read_rate. After a miss
    the entry lives ``ttl``; the reads meanwhile (r_i * ttl on average) are hits and
    the first read after it is the next miss, so key i hits with probability
    r_i ttl / (1 + r_i ttl). Exact for Poisson reads when nothing is evicted.
    """
    return math.fsum(
        p * (p * read_rate * ttl) / (1.0 + p * read_rate * ttl) for p in probabilities
    )


def zipf_che_hit_ratio(keys: int, s: float, capacity: int) -> float:
    """Return Che's LRU hit ratio for ``keys`` Zipf(s) keys, fast for any size.

    The same figure as ``che_hit_ratio(zipf_probabilities(keys, s), capacity)``
    to within 1e-6, in a few milliseconds even for a million keys.
    """
    if capacity >= keys:
        return 1.0
    if capacity <= 0:
        return 0.0
    return _che(*zipf_groups(keys, s), capacity)


def zipf_fifo_hit_ratio(keys: int, s: float, capacity: int) -> float:
    """Return the FIFO and RANDOM hit ratio (``fifo_hit_ratio``) for Zipf(s) keys, fast."""
    if capacity >= keys:
        return 1.0
    if capacity <= 0:
        return 0.0
    return _fifo(*zipf_groups(keys, s), capacity)


def zipf_lfu_hit_ratio(keys: int, s: float, capacity: int) -> float:
    """Return the ideal LFU hit ratio for Zipf(s) keys: the hottest ``capacity`` keys' mass."""
    if capacity >= keys:
        return 1.0
    if capacity <= 0:
        return 0.0
    top = min(capacity, _HEAD)
    mass = math.fsum((i + 1) ** -s for i in range(top))
    if capacity > top:
        mass += _power_sum(top + 1, capacity, s)
    total = math.fsum((i + 1) ** -s for i in range(min(keys, _HEAD)))
    if keys > _HEAD:
        total += _power_sum(_HEAD + 1, keys, s)
    return mass / total


def zipf_ttl_hit_ratio(keys: int, s: float, read_rate: float, ttl: float) -> float:
    """Return ``ttl_hit_ratio`` for Zipf(s) keys, fast for any number of keys."""
    sizes, probs = zipf_groups(keys, s)
    return math.fsum(
        n * p * (p * read_rate * ttl) / (1.0 + p * read_rate * ttl)
        for n, p in zip(sizes, probs, strict=True)
    )


def zipf_distinct_keys(keys: int, s: float, draws: float) -> float:
    """Return how many distinct Zipf(s) keys a Poisson number of draws touches, on average.

    With a Poisson(``draws``) number of independent draws, key i is drawn at least
    once with probability 1 - exp(-p_i * draws), exactly. A write-behind cache
    flushes each object written since the last flush once, so this is the size of
    a flush after an interval holding ``draws`` writes on average.
    """
    if draws <= 0:
        return 0.0
    sizes, probs = zipf_groups(keys, s)
    return math.fsum(
        -n * math.expm1(-p * draws) for n, p in zip(sizes, probs, strict=True)
    )


def zipf_stream(keys: int, zipf_s: float, requests: int, seed: int) -> array:
    """Return the keys a read-only cache engine with ``seed`` reads, in order.

    The engine draws one uniform number for a read's key and one for the gap to
    the next read (after one for the first gap), so the stream skips the gap
    draws: a ``cache`` engine run with these ``keys``, ``zipf_s`` and ``seed``
    reads exactly this sequence, whatever its read rate or policy, as long as it
    has no writes and its policy is not ``random`` (which draws to evict).
    """
    _check_curve_args(keys, requests)
    cdf = zipf_cdf(keys, zipf_s)
    last = keys - 1
    rand = random.Random(seed).random
    out = array("l", bytes(8 * requests))
    rand()  # the engine's first gap
    for i in range(requests):
        key = bisect_right(cdf, rand())
        out[i] = key if key < last else last
        rand()  # the gap to the next read
    return out


def lru_curve(
    stream: Sequence[int],
    sizes: Sequence[int],
    progress: Progress | None = None,
    *,
    warmup: int = 0,
) -> list[float]:
    """Return the LRU hit ratio of ``stream`` for every cache size in ``sizes``.

    One pass, O(n log n) for n requests: a Fenwick tree marks, for every key seen
    so far, the position of its last request. When a key comes back, the marks
    after its previous position count the distinct keys requested since, which
    plus one is its stack distance d; an LRU cache of C entries hits exactly the
    requests with d <= C. The result equals simulating one LRU cache per size on
    the same stream, exactly. Requests before ``warmup`` fill the stack but are
    not counted. ``progress(done, total)`` is called about a hundred times and
    once at the end; to cancel, raise from it (the exception propagates).
    """
    n = len(stream)
    if any(size < 0 for size in sizes):
        raise CurveError("sizes", "sizes must be cache sizes of 0 or more entries")
    if not 0 <= warmup < max(n, 1):
        raise CurveError(
            "warmup", f"warmup must be from 0 to less than the {n} requests"
        )
    largest = min(max(sizes, default=0), n)  # no distance exceeds n
    tree = array("l", bytes(8 * (n + 1)))  # Fenwick tree over positions 1..n
    last_seen: dict[int, int] = {}
    at_distance = array("l", bytes(8 * (largest + 2)))  # index largest+1: beyond
    beyond = largest + 1
    distinct = 0
    every = max(1, n // 100)
    for i in range(n):
        if progress is not None and i % every == 0:
            progress(i, n)
        key = stream[i]
        position = i + 1
        previous = last_seen.get(key)
        if previous is None:
            distance = beyond  # a first request misses in every cache
            distinct += 1
        else:
            marked = 0  # marks at positions <= previous
            j = previous
            while j:
                marked += tree[j]
                j &= j - 1
            distance = distinct - marked + 1
            if distance > beyond:
                distance = beyond
            j = previous
            while j <= n:
                tree[j] -= 1
                j += j & -j
        j = position
        while j <= n:
            tree[j] += 1
            j += j & -j
        last_seen[key] = position
        if i >= warmup:
            at_distance[distance] += 1
    if progress is not None:
        progress(n, n)
    counted = n - warmup
    hits_within = [0] * (largest + 1)
    total = 0
    for d in range(1, largest + 1):
        total += at_distance[d]
        hits_within[d] = total
    return [
        hits_within[min(size, largest)] / counted if counted else 0.0 for size in sizes
    ]


def hit_ratio_curve(
    keys: int,
    zipf_s: float,
    requests: int,
    seed: int,
    sizes: Sequence[int],
    progress: Progress | None = None,
) -> list[float]:
    """Return the LRU hit ratio for each cache size in ``sizes``, in one pass.

    The requests are the first ``requests`` reads of a cache engine with these
    ``keys``, ``zipf_s`` and ``seed`` (``zipf_stream``); every request counts,
    the first (cold) ones included, so use many more requests than keys for a
    steady-state figure. Work is O(requests log requests); ``requests`` is at most
    MAX_CURVE_REQUESTS. ``progress(done, total)`` reports the requests processed
    (about a hundred calls, the last with done == total); raise from it to cancel.
    """
    stream = zipf_stream(keys, zipf_s, requests, seed)
    return lru_curve(stream, sizes, progress)


def _check_curve_args(keys: int, requests: int) -> None:
    if not 1 <= keys <= MAX_CURVE_KEYS:
        raise CurveError(
            "keys", f"keys must be an integer from 1 to {MAX_CURVE_KEYS}; got {keys!r}"
        )
    if not 1 <= requests <= MAX_CURVE_REQUESTS:
        raise CurveError(
            "requests",
            f"requests must be an integer from 1 to {MAX_CURVE_REQUESTS}; got {requests!r}",
        )


def curve_sizes(keys: int, points: int = 20) -> list[int]:
    """Return up to ``points`` cache sizes from 1 to ``keys``, even on a log scale."""
    return sorted({max(1, round(keys ** (i / (points - 1)))) for i in range(points)})
