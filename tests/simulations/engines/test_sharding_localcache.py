"""The local-cache engine: an LRU cache per app server, users routed by id or at random."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.runner import make_step
from simulations.theory import che_hit_ratio, zipf_probabilities
from simulations.theory.routing import random_routing_hit_ratio, routed_hit_ratio

from .golden import assert_golden, trace

LocalCache = get_engine("localcache")
USERS = {"keys": 10_000, "shards": 4, "zipf_s": 1.0, "cache_size": 500}


def warm(params, seed, seconds=20.0):
    engine = LocalCache({**USERS, **params}, seed=seed)
    engine.advance(seconds)
    engine.reset_stats()
    return engine


def test_golden_trace_with_a_reroute_a_hot_user_and_random_routing():
    steps = [
        make_step(LocalCache, 2, "add_shard", {}),
        make_step(LocalCache, 4, "hot_key", {"key": 3, "share": 0.5, "seconds": 2}),
        make_step(LocalCache, 7, "remove_shard", {"shard": 0}),
    ]
    frames = trace(
        LocalCache,
        {"keys": 2000, "shards": 3, "cache_size": 100, "request_rate": 400},
        seed=7,
        steps=steps,
        frames=20,
        dt=0.5,
    )
    assert_golden("localcache", frames)


@pytest.mark.parametrize("strategy", ["modulo", "consistent"])
def test_routing_by_id_hits_as_che_predicts_for_each_servers_own_users(strategy):
    # 40 s at 2,000 requests/s: 80,000 requests, so the binomial error of the
    # hit ratio is under 0.002; Che's approximation is within about 0.01 for LRU.
    engine = warm({"strategy": strategy, "request_rate": 2000}, seed=3)
    engine.advance(40)
    figures = engine.metrics()
    expected = routed_hit_ratio(zipf_probabilities(10_000, 1.0), engine._owner, 500)
    assert figures["hit_ratio"] == pytest.approx(expected, abs=0.015)
    assert engine.theory()[0]["hit_ratio_recent"] == pytest.approx(expected, rel=1e-3)
    assert figures["copies_per_user"] == 1.0


def test_random_routing_hits_as_one_server_alone_would_whatever_the_fleet():
    # Thinning an independent-reference stream keeps its popularities: each of
    # n servers sees all users and holds the same hot ones, so the fleet hits
    # as a single cache of one server's size, for 2 servers as for 8.
    single = che_hit_ratio(zipf_probabilities(10_000, 1.0), 500)
    assert random_routing_hit_ratio(10_000, 1.0, 500) == pytest.approx(single, abs=1e-5)
    for servers in (2, 8):
        engine = warm({"routing": "random", "shards": servers}, seed=servers)
        engine.advance(40)
        assert engine.metrics()["hit_ratio"] == pytest.approx(single, abs=0.015)
        assert engine.theory()[0]["hit_ratio_recent"] == pytest.approx(single, rel=1e-3)


def test_routing_by_id_beats_random_routing_with_the_same_memory():
    # Four caches of 500: by id they hold about 2,000 distinct users, at random
    # the same popular few hundred four times over.
    by_id = warm({"strategy": "modulo"}, seed=1)
    anywhere = warm({"routing": "random"}, seed=1)
    by_id.advance(30)
    anywhere.advance(30)
    routed, scattered = by_id.metrics(), anywhere.metrics()
    assert routed["hit_ratio"] > scattered["hit_ratio"] + 0.15
    assert routed["db_reads_per_s"] < 0.7 * scattered["db_reads_per_s"]
    assert scattered["copies_per_user"] > 1.2
    assert routed["copies_per_user"] == 1.0


def test_the_users_a_resize_moves_meet_a_cold_cache_and_the_hit_ratio_recovers():
    engine = warm({"strategy": "modulo", "request_rate": 2000}, seed=4)
    before = engine.metrics()["hit_ratio_recent"]
    assert engine.metrics()["hit_ratio_low"] == -1.0  # no re-route yet
    engine.apply("add_shard")
    assert engine.metrics()["cached_per_server"][-1] == 0  # the newcomer is cold
    engine.advance(1.0)
    dip = engine.metrics()["hit_ratio_recent"]
    assert dip < before - 0.12
    engine.advance(14.0)
    figures = engine.metrics()
    assert figures["hit_ratio_low"] <= dip
    expected = engine.theory()[0]["hit_ratio_recent"]
    # back to the steady state of five servers, above that of four
    assert figures["hit_ratio_recent"] == pytest.approx(expected, abs=0.04)
    assert expected > before


def test_consistent_hashing_makes_the_cold_cache_dip_shallower_than_modulo():
    dips = {}
    for strategy in ("modulo", "consistent"):
        lows = []
        for seed in range(3):
            engine = warm({"strategy": strategy, "request_rate": 2000}, seed=seed)
            engine.apply("add_shard")
            engine.advance(5)
            lows.append(engine.metrics()["hit_ratio_low"])
        dips[strategy] = sum(lows) / len(lows)
    assert dips["consistent"] > dips["modulo"] + 0.08


def test_a_removed_server_takes_its_cache_with_it_and_its_users_start_cold():
    engine = warm({"strategy": "consistent"}, seed=2)
    theirs = [k for k, sid in enumerate(engine._owner) if sid == 1]
    engine.apply("remove_shard", {"shard": 1})
    assert 1 not in engine.caches
    assert not any(k in engine.caches[engine._owner[k]] for k in theirs[:50])


def test_a_smaller_cache_setting_evicts_at_once():
    engine = warm({}, seed=5)
    engine.set_param("cache_size", 100)
    assert max(engine.metrics()["cached_per_server"]) == 100
    engine.set_param("cache_size", 0)
    engine.advance(2)
    figures = engine.metrics()
    assert figures["hit_ratio_recent"] == 0.0
    assert engine.theory()[0]["hit_ratio_recent"] == 0.0


@settings(max_examples=30, deadline=None)
@given(
    routing=st.sampled_from(["by_id", "random"]),
    shards=st.integers(1, 6),
    size=st.integers(0, 60),
    actions=st.lists(
        st.tuples(
            st.sampled_from(["advance", "add", "remove", "size", "routing"]),
            st.integers(0, 99),
        ),
        max_size=8,
    ),
)
def test_no_cache_outgrows_its_size_and_the_copies_add_up(
    routing, shards, size, actions
):
    params = {"keys": 300, "shards": shards, "cache_size": size, "routing": routing}
    engine = LocalCache({**params, "request_rate": 500}, seed=1)
    for action, number in actions:
        if action == "advance":
            engine.advance(0.4)
        elif action == "add" and len(engine.live) < 64:
            engine.apply("add_shard")
        elif action == "remove" and len(engine.live) > 1:
            engine.apply(
                "remove_shard", {"shard": engine.live[number % len(engine.live)]}
            )
        elif action == "size":
            engine.set_param("cache_size", number)
        elif action == "routing":
            engine.set_param("routing", "random" if number % 2 else "by_id")
        assert set(engine.caches) == set(engine.live)
        assert all(len(c) <= engine.p["cache_size"] for c in engine.caches.values())
        counted: dict[int, int] = {}
        for cache in engine.caches.values():
            for key in cache:
                counted[key] = counted.get(key, 0) + 1
        assert counted == engine.copies
        figures = engine.metrics()
        assert 0.0 <= figures["hit_ratio_recent"] <= 1.0
        if engine.p["cache_size"] == 0:
            assert not engine.copies
