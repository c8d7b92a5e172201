"""Where a request's data lives: rows spread over shards, users over app caches.

Two results for the sharding engines. A request that also reads related rows
stored under their own keys touches several shards (the cost of a JOIN across
shards); a cache in each app server holds more distinct users when each user is
always sent to the same server than when requests land on servers at random.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .caching import che_hit_ratio, zipf_che_hit_ratio


def shards_touched(
    related: int, key_shares: Sequence[float], traffic_shares: Sequence[float]
) -> float:
    """Return the mean number of shards a request reads.

    The request's own key is on shard s with probability ``traffic_shares[s]``;
    each of its ``related`` rows is an independent key drawn uniformly, on shard
    s with probability ``key_shares[s]``. Shard s is left out only when neither
    the key nor any related row is on it, so the mean is
    sum over s of 1 - (1 - q_s)(1 - c_s)^k. With n equal shards it is
    n - (n - 1)(1 - 1/n)^k, whatever the popularity of the keys.
    """
    return math.fsum(
        1.0 - (1.0 - q) * (1.0 - c) ** related
        for c, q in zip(key_shares, traffic_shares, strict=True)
    )


def cross_shard_share(
    related: int, key_shares: Sequence[float], traffic_shares: Sequence[float]
) -> float:
    """Return the share of requests that read more than one shard.

    A request stays on one shard only when all ``related`` rows are on its own
    key's shard: 1 - sum over s of q_s c_s^k, which is 1 - (1/n)^k for n
    equal shards.
    """
    if related == 0:
        return 0.0
    return 1.0 - math.fsum(
        q * c**related for c, q in zip(key_shares, traffic_shares, strict=True)
    )


def routed_hit_ratio(
    probabilities: Sequence[float], owners: Sequence[int], capacity: int
) -> float:
    """Return the LRU hit ratio of per-server caches when each key has one server.

    Server s sees only its own keys, an independent-reference stream with the
    popularities renormalised over them, so its cache of ``capacity`` entries
    hits as Che's approximation says; the whole fleet hits the traffic-weighted
    mean of the servers.
    """
    groups: dict[int, list[float]] = {}
    for p, owner in zip(probabilities, owners, strict=True):
        groups.setdefault(owner, []).append(p)
    total = 0.0
    for probs in groups.values():
        share = math.fsum(probs)
        if share > 0.0:
            total += share * che_hit_ratio([p / share for p in probs], capacity)
    return total


def random_routing_hit_ratio(keys: int, s: float, capacity: int) -> float:
    """Return the LRU hit ratio of per-server caches when requests go anywhere.

    Sending each request of an independent-reference stream to one of n servers
    at random thins it to n streams with the same popularities, so every server
    caches the same hottest keys and hits as one cache of ``capacity`` entries
    would alone: the fleet's memory holds no more distinct keys than one server.
    """
    return zipf_che_hit_ratio(keys, s, capacity)
