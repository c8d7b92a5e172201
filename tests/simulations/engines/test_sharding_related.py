"""The sharding engine's related rows: the cost of a JOIN across shards."""

from __future__ import annotations

import pytest

from simulations.engines import get_engine
from simulations.theory.routing import cross_shard_share, shards_touched

Sharding = get_engine("sharding")


def even_shards(n, related):
    """Return (mean shards read, cross-shard share) for n equal shards."""
    return n - (n - 1) * (1 - 1 / n) ** related, 1 - (1 / n) ** related


@pytest.mark.parametrize(("n", "related"), [(2, 1), (4, 3), (8, 2)])
def test_related_rows_under_their_own_keys_reach_the_shards_theory_predicts(n, related):
    # 20 s at 2,000 requests/s: 40,000 requests, so the binomial error of the
    # cross-shard share is under 0.0025 and that of the mean under 0.01.
    params = {"strategy": "modulo", "shards": n, "related": related}
    engine = Sharding(params, seed=n)
    engine.advance(20)
    figures = engine.metrics()
    mean, cross = even_shards(n, related)
    assert figures["shards_per_request"] == pytest.approx(mean, abs=0.03)
    assert figures["cross_shard_share"] == pytest.approx(cross, abs=0.01)
    theory = engine.theory()[0]
    # the engine's prediction uses its real key counts: within 1 % of even shares
    assert theory["shards_per_request"] == pytest.approx(mean, rel=0.01)
    assert theory["cross_shard_share"] == pytest.approx(cross, rel=0.01)


def test_keeping_related_rows_with_their_key_brings_every_request_back_to_one_shard():
    engine = Sharding({"strategy": "modulo", "shards": 4, "related": 3}, seed=1)
    engine.advance(5)
    spread = engine.metrics()
    assert spread["cross_shard_share"] > 0.95
    engine.set_param("related_layout", "together")
    engine.advance(5)
    together = engine.metrics()
    assert together["shards_per_request"] == 1.0
    assert together["cross_shard_share"] == 0.0
    assert engine.theory()[0]["cross_shard_share"] == 0.0
    # every shard query is a request again: the fleet does a third of the work
    queries = sum(together["load_per_shard"])
    assert queries == pytest.approx(together["requests_per_s"], rel=0.1)
    assert spread["requests_per_s"] == pytest.approx(
        together["requests_per_s"], rel=0.1
    )


def test_each_shard_a_request_reaches_does_one_query():
    engine = Sharding({"strategy": "modulo", "shards": 4, "related": 3}, seed=2)
    engine.advance(10)
    figures = engine.metrics()
    assert sum(engine.load) == pytest.approx(
        figures["shards_per_request"] * figures["requests"], rel=1e-9
    )


def test_uneven_shards_need_the_shares_of_keys_and_traffic():
    # Ranges put the popular keys on shard 0 with few of the keys: a request's
    # own key is mostly there, its related rows mostly elsewhere.
    key_shares, traffic = [0.25, 0.75], [0.9, 0.1]
    assert shards_touched(1, key_shares, traffic) == pytest.approx(
        2 - (0.1 * 0.75 + 0.9 * 0.25)
    )
    assert cross_shard_share(1, key_shares, traffic) == pytest.approx(
        1 - (0.9 * 0.25 + 0.1 * 0.75)
    )
    engine = Sharding(
        {"strategy": "range", "shards": 2, "related": 2, "zipf_s": 1.2}, seed=3
    )
    engine.advance(20)
    figures, theory = engine.metrics(), engine.theory()[0]
    assert figures["cross_shard_share"] == pytest.approx(
        theory["cross_shard_share"], abs=0.01
    )
    assert figures["shards_per_request"] == pytest.approx(
        theory["shards_per_request"], abs=0.01
    )
