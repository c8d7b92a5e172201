"""The one-pass LRU hit-ratio curve (stack distances) behind the curve job."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.theory import che_hit_ratio, zipf_probabilities
from simulations.theory.caching import (
    MAX_CURVE_REQUESTS,
    CurveError,
    hit_ratio_curve,
    lru_curve,
    zipf_stream,
)

Cache = get_engine("cache")


def simulate_lru(stream, size, warmup=0):
    """Return the hit ratio of one LRU cache of ``size`` entries on ``stream``."""
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for i, key in enumerate(stream):
        if key in cache:
            cache.move_to_end(key)
            hits += i >= warmup
        else:
            cache[key] = None
            if len(cache) > size:
                cache.popitem(last=False)
    counted = len(stream) - warmup
    return hits / counted if counted else 0.0


def test_the_curve_equals_one_lru_simulation_per_size_exactly():
    stream = zipf_stream(2000, 0.8, 60_000, seed=1)
    sizes = [1, 5, 50, 200, 1000, 1999, 2000, 5000]
    curve = lru_curve(stream, sizes)
    assert curve == [simulate_lru(stream, size) for size in sizes]
    assert curve == sorted(curve)
    assert 0 < curve[0] < curve[-1] < 1  # cold misses: each key's first request


@settings(max_examples=200, deadline=None)
@given(
    stream=st.lists(st.integers(0, 20), max_size=300),
    sizes=st.lists(st.integers(0, 25), min_size=1, max_size=8),
    skip=st.integers(0, 50),
)
def test_any_stream_gets_exactly_the_lru_hit_ratios(stream, sizes, skip):
    warmup = min(skip, max(len(stream) - 1, 0))
    expected = [simulate_lru(stream, size, warmup) for size in sizes]
    assert lru_curve(stream, sizes, warmup=warmup) == expected


def test_the_stream_is_what_the_cache_engine_reads():
    engine = Cache(
        {"keys": 2000, "zipf_s": 0.8, "capacity": 300, "read_rate": 1000}, seed=4
    )
    engine.advance(12)
    reads = engine.hits + engine.misses
    stream = zipf_stream(2000, 0.8, reads, seed=4)
    assert hit_ratio_curve(2000, 0.8, reads, 4, [300]) == [engine.hits / reads]
    # and the engine holds the 300 keys read last, least recent first
    assert (
        list(engine.store) == list(OrderedDict.fromkeys(reversed(stream)))[:300][::-1]
    )


def test_the_curve_follows_che_approximation_on_a_long_stream():
    # 300k requests over 1000 keys: the standard error of each point is below
    # 0.001, the cold misses cost at most 1000 / 300k = 0.0033, and Che's
    # approximation itself is within a few thousandths here; 0.01 holds all three.
    sizes = [25, 50, 100, 200, 400, 800]
    curve = hit_ratio_curve(1000, 0.8, 300_000, 2, sizes)
    probabilities = zipf_probabilities(1000, 0.8)
    for size, measured in zip(sizes, curve):
        assert measured == pytest.approx(che_hit_ratio(probabilities, size), abs=0.01)


def test_progress_is_reported_about_a_hundred_times_and_at_the_end():
    calls = []
    hit_ratio_curve(
        100,
        1.0,
        10_000,
        1,
        [10],
        progress=lambda done, total: calls.append((done, total)),
    )
    assert 90 <= len(calls) <= 102
    assert calls[-1] == (10_000, 10_000)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert {total for _, total in calls} == {10_000}


def test_raising_from_the_progress_callback_cancels_the_work():
    class Cancelled(Exception):
        pass

    seen = []

    def progress(done, total):
        seen.append(done)
        if done >= total // 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        hit_ratio_curve(100, 1.0, 10_000, 1, [10], progress=progress)
    assert seen[-1] < 10_000


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        ((100, 1.0, 0, 1, [10]), "requests", f"from 1 to {MAX_CURVE_REQUESTS}"),
        ((100, 1.0, MAX_CURVE_REQUESTS + 1, 1, [10]), "requests", "from 1 to"),
        ((0, 1.0, 100, 1, [10]), "keys", "from 1 to 1000000"),
        ((100, 1.0, 100, 1, [10, -1]), "sizes", "0 or more"),
    ],
)
def test_bad_arguments_name_the_field_and_the_allowed_values(args, field, words):
    with pytest.raises(CurveError) as info:
        hit_ratio_curve(*args)
    assert info.value.field == field
    assert words in info.value.message
