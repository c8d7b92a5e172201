"""The whole stack against its Jackson-network theory, and the bottleneck story.

Each setting's busiest station is below 0.8 utilisation; the mean response time
of a long seeded run (200 s after 20 s of warm-up) must agree with the theory
within the tolerance of its row.
"""

from __future__ import annotations

import pytest

from simulations.engines.stack import StackEngine

NO_SLOW = {"slow_share": 0.0, "cache_items": 0, "replicas": 0}


def long_run(params, warmup=20.0, length=200.0, seed=3):
    engine = StackEngine(params, seed=seed)
    engine.advance(warmup)
    engine.reset_stats()
    engine.advance(length)
    return engine, engine.metrics()


@pytest.mark.parametrize(
    ("params", "rel"),
    [
        # One server, no balancer: app load 0.75.
        (
            {**NO_SLOW, "balancer": "none", "app_servers": 1, "rate": 50, "app_ms": 15},
            0.05,
        ),
        # A balancer and 4 servers.
        (
            {
                **NO_SLOW,
                "app_servers": 4,
                "rate": 200,
                "app_ms": 14,
                "db_read_ms": 2,
                "db_write_ms": 4,
            },
            0.05,
        ),
        # With a cache (Che's hit ratio decides the database's load).
        ({**NO_SLOW, "cache_items": 10_000, "rate": 200}, 0.05),
        # Replicas and shards: the master's reads and writes mix (M/G/1).
        (
            {**NO_SLOW, "replicas": 2, "shards": 3, "rate": 300, "write_share": 0.3},
            0.05,
        ),
        # The slow work in a job queue, off the response time.
        ({"job_queue": True, "slow_share": 0.3, "slow_ms": 100, "workers": 12}, 0.05),
    ],
)
def test_the_mean_response_time_agrees_with_the_jackson_network(params, rel):
    engine, metrics = long_run(params)
    values, gaps = engine.theory()
    assert not gaps, gaps
    assert max(v for k, v in values.items() if k.startswith("util_")) < 0.8
    assert metrics["errors"] == 0
    assert metrics["mean_response_ms"] == pytest.approx(
        values["mean_response_ms"], rel=rel
    )


def test_an_overloaded_layer_has_no_theory_line_and_says_why():
    engine = StackEngine({"app_servers": 1, "balancer": "none", "rate": 200})
    values, gaps = engine.theory()
    assert "response_ms" not in values
    assert "no steady state" in gaps["response_ms"]


BASE = {
    "rate": 50,
    "app_ms": 10,
    "slow_share": 0.1,
    "slow_ms": 60,
    "job_queue": False,
    "db_read_ms": 8,
    "db_write_ms": 10,
    "write_share": 0.1,
    "cache_items": 0,
    "replicas": 0,
}
# Each fix of the notes' story, and where the bottleneck goes next.
STORY = [
    ({"balancer": "none", "app_servers": 1, "sessions": "local"}, "app"),
    ({"balancer": "single", "app_servers": 4, "sessions": "central"}, "db"),
    ({"cache_items": 20_000, "keys": 100_000, "zipf_s": 1.0}, "app"),
    ({"app_servers": 16}, "db"),
    ({"job_queue": True, "workers": 1}, "queue"),
    ({"workers": 8}, "db"),
]


def test_every_fix_moves_the_bottleneck_to_the_next_layer():
    params = dict(BASE)
    seen = []
    for change, _ in STORY:
        params.update(change)
        engine = StackEngine(params, seed=5)
        engine.advance(30.0)
        seen.append(engine.metrics()["bottleneck"])
    assert seen == [expected for _, expected in STORY]


def test_the_masters_and_the_replicas_have_their_own_theory_of_load():
    params = {
        "rate": 300,
        "write_share": 0.2,
        "cache_items": 0,
        "replicas": 2,
        "shards": 2,
        "slow_share": 0.0,
    }
    engine = StackEngine(params, seed=3)
    engine.advance(10.0)
    measured = {"util_db_masters": 0.0, "util_db_replicas": 0.0}
    for _ in range(40):  # 40 back-to-back 5-second windows
        engine.advance(5.0)
        for name in measured:
            measured[name] += engine.metrics()[name] / 40
    values, gaps = engine.theory()
    assert not gaps, gaps
    # Per master: 150 x (0.2 x 10 + 0.8 x 5 / 3) ms; per replica: 150 x 0.8 x 5 / 3 ms.
    assert values["util_db_masters"] == pytest.approx(0.5)
    assert values["util_db_replicas"] == pytest.approx(0.2)
    assert values["util_db"] == values["util_db_masters"]
    for name in ("util_db_masters", "util_db_replicas"):
        assert measured[name] == pytest.approx(values[name], rel=0.05)


def test_a_database_with_its_masters_down_says_so_in_place_of_a_load():
    engine = StackEngine({"replicas": 1})
    engine.apply("fail", {"layer": "db"})
    values, gaps = engine.theory()
    assert "every database master is down" in gaps["util_db_masters"]
    assert values["util_db_replicas"] > 0
