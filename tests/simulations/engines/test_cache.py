"""The cache engine: LRU cache-aside in front of a database."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError, ParamError
from simulations.engines.runner import make_step, run_headless
from simulations.theory import che_hit_ratio, zipf_probabilities

from .golden import assert_golden, trace

Cache = get_engine("cache")


def test_golden_trace_with_crash_and_restart():
    steps = [make_step(Cache, 3, "crash", {}), make_step(Cache, 5, "restart", {}),
             make_step(Cache, 7, "resize", {"capacity": 50})]
    frames = trace(Cache, {"keys": 500, "capacity": 100, "read_rate": 200}, seed=7, steps=steps,
                   frames=20, dt=0.5)
    assert_golden("cache", frames)


@pytest.mark.parametrize(("keys", "capacity", "s"), [(1000, 100, 0.8), (5000, 250, 1.0), (2000, 400, 0.6)])
def test_lru_hit_ratio_agrees_with_che_approximation(keys, capacity, s):
    # 300k reads after a warm-up long enough to fill the cache many times over: the
    # standard error of the measured ratio is below 0.001, so 0.01 leaves room only
    # for the approximation's own (small) error.
    summary = run_headless(
        Cache, {"keys": keys, "capacity": capacity, "zipf_s": s, "read_rate": 5000},
        seed=11, duration=66, warmup=6,
    )
    expected = che_hit_ratio(zipf_probabilities(keys, s), capacity)
    assert summary.metrics["hit_ratio"] == pytest.approx(expected, abs=0.01)


def test_a_crashed_cache_sends_every_read_to_the_database():
    engine = Cache({"read_rate": 1000}, seed=1)
    engine.advance(10)
    assert engine.metrics()["hit_ratio_recent"] > 0.3
    engine.apply("crash")
    engine.advance(5)
    figures = engine.metrics()
    assert figures["hit_ratio_recent"] == 0.0
    assert figures["db_reads_per_s_recent"] == pytest.approx(1000, rel=0.1)
    assert figures["occupancy"] == 0
    engine.apply("restart")
    engine.advance(5)
    assert engine.metrics()["hit_ratio_recent"] > 0.2


def test_restored_state_continues_identically():
    engine = Cache({"keys": 3000, "capacity": 300}, seed=3)
    engine.advance(4.3)
    copy = Cache.restore(engine.snapshot())
    for _ in range(5):
        assert engine.advance(0.7) == copy.advance(0.7)
        assert engine.metrics() == copy.metrics()
    assert list(engine.store) == list(copy.store)


def test_same_seed_gives_the_same_frames_and_another_seed_does_not():
    a = trace(Cache, seed=5, frames=5)
    assert a == trace(Cache, seed=5, frames=5)
    assert a != trace(Cache, seed=6, frames=5)


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(1, 300),
    keys=st.integers(10, 2000),
    s=st.floats(0, 2),
    actions=st.lists(st.sampled_from(["advance", "crash", "restart", "flush", "resize"]), max_size=12),
    new_capacity=st.integers(1, 300),
)
def test_occupancy_never_exceeds_capacity_and_reads_are_conserved(capacity, keys, s, actions, new_capacity):
    engine = Cache({"capacity": capacity, "keys": keys, "zipf_s": s, "read_rate": 300}, seed=2)
    for action in actions:
        if action == "advance":
            engine.advance(0.3)
        elif action == "resize":
            engine.apply("resize", {"capacity": new_capacity})
        else:
            engine.apply(action)
        assert len(engine.store) <= engine.p["capacity"]
        figures = engine.metrics()
        assert 0.0 <= figures["hit_ratio"] <= 1.0
        # every stored key came from a miss that was not evicted since
        assert figures["misses"] >= len(engine.store)


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [({"capacity": 0}, "capacity", "from 1 to 1000000"),
     ({"zipf_s": "steep"}, "zipf_s", "a number from 0 to 2.5"),
     ({"colour": 3}, "colour", "its parameters: keys, zipf_s")],
)
def test_bad_parameters_name_the_field_and_the_allowed_values(params, field, words):
    with pytest.raises(ParamError) as info:
        Cache(params)
    assert info.value.field == field
    assert words in info.value.message


def test_unknown_command_names_the_allowed_ones():
    with pytest.raises(CommandError) as info:
        Cache().apply("explode")
    assert "flush, crash, restart, resize" in info.value.message
