"""The sharding engine: modulo, range and consistent hashing under Zipf load."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError
from simulations.engines.runner import make_step, run_headless
from simulations.theory import zipf_probabilities
from simulations.theory.storage import (
    consistent_moved_fraction,
    consistent_moved_sd,
    modulo_moved_fraction,
    range_split_moved_fraction,
)

from .golden import assert_golden, trace

Sharding = get_engine("sharding")


def test_golden_trace_with_resizes_and_a_hot_key():
    steps = [
        make_step(Sharding, 2, "add_shard", {}),
        make_step(Sharding, 4, "hot_key", {"key": 3, "share": 0.5, "seconds": 2}),
        make_step(Sharding, 7, "remove_shard", {"shard": 0}),
    ]
    frames = trace(
        Sharding,
        {"keys": 2000, "shards": 3, "vnodes": 50, "request_rate": 400},
        seed=7,
        steps=steps,
        frames=20,
        dt=0.5,
    )
    assert_golden("sharding", frames)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 8, 16])
def test_modulo_moves_n_over_n_plus_one_of_the_keys(n):
    # A key stays only when hash % n == hash % (n + 1). Over 50,000 keys the
    # binomial standard error of the moved share is at most 0.5 / sqrt(50000) =
    # 0.0022, so 0.01 is more than four standard errors.
    engine = Sharding({"strategy": "modulo", "shards": n, "keys": 50_000}, seed=1)
    engine.apply("add_shard")
    moved = engine.metrics()["moved_fraction"]
    assert moved == pytest.approx(n / (n + 1), abs=0.01)
    assert moved == pytest.approx(modulo_moved_fraction(n, n + 1), abs=0.01)
    engine.apply("remove_shard")
    assert engine.metrics()["moved_fraction"] == pytest.approx(n / (n + 1), abs=0.01)


@pytest.mark.parametrize("vnodes", [4, 100, 1000])
def test_consistent_hashing_moves_one_over_n_plus_one_within_the_arc_spread(vnodes):
    # Each seed places the ring's points afresh. The newcomer's share is the sum
    # of `vnodes` of the (n+1)*vnodes arcs: Beta(v, N - v) with standard deviation
    # sqrt(p (1 - p) / (N + 1)), plus the binomial noise of routing 20,000 keys
    # (consistent_moved_sd). Every run must fall within 4.5 of those deviations of
    # 1/(n+1); the mean of 30 runs within 4 standard errors; and the spread of the
    # runs must match the theory within the 99.9 % range of a sample deviation
    # with 29 degrees of freedom (0.6 to 1.45 times sigma).
    n, keys, runs = 4, 20_000, 30
    expected = consistent_moved_fraction(n, n + 1)
    assert expected == pytest.approx(1 / (n + 1))
    sd = consistent_moved_sd(n, n + 1, vnodes, keys)
    moved = []
    for seed in range(runs):
        engine = Sharding(
            {"strategy": "consistent", "shards": n, "vnodes": vnodes, "keys": keys},
            seed=seed,
        )
        engine.apply("add_shard")
        moved.append(engine.metrics()["moved_fraction"])
    assert all(abs(m - expected) < 4.5 * sd for m in moved)
    assert statistics.fmean(moved) == pytest.approx(
        expected, abs=4 * sd / math.sqrt(runs)
    )
    assert 0.6 * sd < statistics.stdev(moved) < 1.45 * sd


def test_more_virtual_nodes_make_the_moved_share_tighter():
    spread = {}
    for vnodes in (2, 500):
        moved = []
        for seed in range(20):
            engine = Sharding(
                {"strategy": "consistent", "shards": 5, "vnodes": vnodes, "keys": 5000},
                seed=seed,
            )
            engine.apply("add_shard")
            moved.append(engine.metrics()["moved_fraction"])
        spread[vnodes] = statistics.stdev(moved)
    # theory: about 0.15 with 2 points per shard, 0.017 with 500
    assert spread[500] < spread[2] / 4


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_range_split_moves_half_of_the_widest_range(n):
    keys = 10_000
    engine = Sharding({"strategy": "range", "shards": n, "keys": keys}, seed=0)
    engine.apply("add_shard")
    figures = engine.metrics()
    # boundaries fall between keys: exact up to one key
    assert figures["moved_fraction"] == pytest.approx(
        range_split_moved_fraction(n), abs=1 / keys
    )
    assert sum(figures["keys_per_shard"]) == keys


def test_consistent_hashing_moves_keys_only_to_the_new_shard_and_from_the_removed_one():
    engine = Sharding({"strategy": "consistent", "shards": 4, "keys": 5000}, seed=3)
    before = list(engine._owner)
    engine.apply("add_shard")
    after = list(engine._owner)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert changed and all(b == 4 for _, b in changed)
    engine.apply("remove_shard", {"shard": 1})
    final = list(engine._owner)
    changed = [(a, b) for a, b in zip(after, final) if a != b]
    assert changed and all(a == 1 for a, _ in changed)
    assert 1 not in final


def test_shard_loads_follow_the_popularity_of_the_keys_each_holds():
    # The expected share of a shard is the Zipf popularity of its keys. With
    # 120,000 requests the binomial standard error of a share is below 0.0015,
    # so 0.007 is over four standard errors.
    params = {"keys": 2000, "shards": 5, "zipf_s": 1.0, "request_rate": 10_000}
    engine = Sharding(params, seed=4)
    probabilities = zipf_probabilities(2000, 1.0)
    expected = [0.0] * 5
    for key, shard in enumerate(engine._owner):
        expected[shard] += probabilities[key]
    engine.advance(12)
    figures = engine.metrics()
    served = figures["requests"]
    assert served > 100_000
    assert figures["max_shard_share"] == pytest.approx(max(expected), abs=0.007)
    assert figures["load_imbalance"] == pytest.approx(max(expected) * 5, abs=5 * 0.007)


def test_range_sharding_puts_the_popular_keys_on_one_shard():
    summary = run_headless(
        Sharding, {"strategy": "range", "shards": 8, "zipf_s": 1.0}, seed=2, duration=20
    )
    assert summary.metrics["max_shard_share"] > 0.5
    hashed = run_headless(
        Sharding,
        {"strategy": "consistent", "shards": 8, "zipf_s": 1.0},
        seed=2,
        duration=20,
    )
    assert hashed.metrics["max_shard_share"] < 0.3


def test_a_hot_key_overloads_its_shard_until_the_burst_ends():
    engine = Sharding({"shards": 8, "zipf_s": 0.0, "request_rate": 4000}, seed=5)
    engine.advance(3)
    assert engine.metrics()["load_imbalance_recent"] < 1.3
    events = engine.apply("hot_key", {"key": 42, "share": 0.6, "seconds": 4})
    shard = events[0]["shard"]
    engine.advance(3)
    figures = engine.metrics()
    loads = dict(zip(figures["shard_names"], figures["load_per_shard"]))
    busiest = max(loads, key=loads.get)
    assert busiest == f"shard {shard}"
    # 60 % of the requests plus an eighth of the rest
    assert loads[busiest] / sum(loads.values()) == pytest.approx(
        0.6 + 0.4 / 8, abs=0.03
    )
    assert figures["hot_key"] == 42
    events = engine.advance(2)
    assert {"type": "shard.hot_key_end", "t": 7.0, "key": 42} in events
    engine.advance(3)
    assert engine.metrics()["hot_key"] == -1
    assert engine.metrics()["load_imbalance_recent"] < 1.3


def test_changing_the_shards_parameter_resizes_and_reports_the_moved_keys():
    engine = Sharding({"strategy": "modulo", "shards": 3, "keys": 30_000}, seed=1)
    events = engine.set_param("shards", 6)
    assert events[0]["type"] == "shard.rebalance"
    assert events[0]["added"] == [3, 4, 5]
    assert engine.metrics()["shards"] == 6
    # hash % 3 to hash % 6 keeps the keys with hash % 6 < 3: half move
    assert engine.metrics()["moved_fraction"] == pytest.approx(
        modulo_moved_fraction(3, 6), abs=0.015
    )
    events = engine.set_param("strategy", "consistent")
    assert events[0]["strategy"] == "consistent"
    assert engine.metrics()["moved_fraction"] > 0.5


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(["modulo", "range", "consistent"]),
    shards=st.integers(1, 10),
    keys=st.integers(100, 3000),
    vnodes=st.integers(1, 40),
    actions=st.lists(
        st.tuples(
            st.sampled_from(["advance", "add", "remove", "hot"]), st.integers(0, 99)
        ),
        max_size=10,
    ),
)
def test_every_key_lives_on_exactly_one_live_shard_and_requests_are_conserved(
    strategy, shards, keys, vnodes, actions
):
    params = {
        "strategy": strategy,
        "shards": shards,
        "keys": keys,
        "vnodes": vnodes,
        "request_rate": 500,
    }
    engine = Sharding(params, seed=2)
    routed = 0
    for action, number in actions:
        before = list(engine._owner)
        if action == "advance":
            engine.advance(0.3)
        elif action == "add" and len(engine.live) < 64:
            routed += sum(engine.load)
            engine.apply("add_shard")
        elif action == "remove" and len(engine.live) > 1:
            routed += sum(engine.load)
            engine.apply(
                "remove_shard", {"shard": engine.live[number % len(engine.live)]}
            )
        elif action == "hot":
            engine.apply("hot_key", {"key": number % keys, "seconds": 0.5})
        figures = engine.metrics()
        assert set(engine._owner) <= set(engine.live)
        assert sum(figures["keys_per_shard"]) == keys
        assert figures["shards"] == len(engine.live) == engine.p["shards"]
        assert routed + sum(engine.load) == figures["requests"]
        assert 0.0 <= figures["moved_fraction"] <= 1.0
        if strategy == "consistent" and action in ("add", "remove"):
            moved = [(a, b) for a, b in zip(before, engine._owner) if a != b]
            assert all(a not in engine.live or b == engine.live[-1] for a, b in moved)
        if sum(engine.load):
            assert figures["load_imbalance"] >= 1.0
            assert figures["max_shard_share"] >= 1 / len(engine.live)


def test_commands_name_the_shards_and_keys_the_world_has_now():
    engine = Sharding({"shards": 3, "keys": 500})
    with pytest.raises(CommandError) as info:
        engine.apply("remove_shard", {"shard": 9})
    assert info.value.field == "remove_shard.shard"
    assert "shards: 0, 1, 2" in info.value.message
    with pytest.raises(CommandError) as info:
        engine.apply("hot_key", {"key": 500})
    assert info.value.field == "hot_key.key"
    assert "from 0 to 499" in info.value.message
    single = Sharding({"shards": 1})
    with pytest.raises(CommandError) as info:
        single.apply("remove_shard")
    assert "last shard" in info.value.message
    full = Sharding({"shards": 64, "keys": 100})
    with pytest.raises(CommandError) as info:
        full.apply("add_shard")
    assert "at most 64" in info.value.message
