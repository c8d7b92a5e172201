"""The scaling engine: one bigger server against more servers, under growing traffic."""

from __future__ import annotations

import contextlib
import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError
from simulations.engines.runner import make_step, run_headless
from simulations.engines.scaling import SIZES
from simulations.theory.availability import (
    expected_dropped,
    mmck_blocking,
    mmck_utilization,
)

from .golden import assert_golden, trace

Scaling = get_engine("scaling")
STEADY = {"growth_rps_per_min": 0, "auto_scale": False}


def conserved(engine) -> bool:
    m = engine.metrics()
    return m["arrived"] == m["completed"] + m["dropped"] + m["in_flight"]


def test_golden_trace_vertical_with_upgrade_spike_and_kill():
    steps = [
        make_step(Scaling, 2, "upgrade", {}),
        make_step(Scaling, 5, "spike", {"factor": 3, "duration_s": 3}),
        make_step(Scaling, 9, "kill_server", {"server": 0}),
    ]
    params = {
        "strategy": "vertical",
        "arrival_rate": 80,
        "growth_rps_per_min": 120,
        "upgrade_downtime_s": 1.5,
        "repair_s": 2,
        "auto_scale": False,
    }
    frames = trace(Scaling, params, seed=3, steps=steps, frames=26, dt=0.5)
    assert_golden("scaling_vertical", frames)


def test_golden_trace_horizontal_with_add_kill_spike_and_auto_scale():
    steps = [
        make_step(Scaling, 1, "add_server", {}),
        make_step(Scaling, 4, "kill_server", {"server": 0}),
        make_step(Scaling, 6, "spike", {"factor": 2.5, "duration_s": 4}),
    ]
    params = {
        "strategy": "horizontal",
        "servers": 2,
        "arrival_rate": 120,
        "growth_rps_per_min": 240,
        "boot_s": 1.5,
        "repair_s": 3,
        "check_interval_s": 2,
    }
    frames = trace(Scaling, params, seed=9, steps=steps, frames=26, dt=0.5)
    assert_golden("scaling_horizontal", frames)


def test_the_size_table_doubles_the_price_but_not_the_capacity():
    for (_, w0, p0), (_, w1, p1) in zip(SIZES, SIZES[1:]):
        assert p1 == pytest.approx(2 * p0)
        assert 1 < w1 / w0 < 2
    per_worker = [price / workers for _, workers, price in SIZES]
    assert per_worker == sorted(per_worker) and per_worker[-1] > 2 * per_worker[0]


def test_one_server_drops_and_works_as_an_mmck_queue():
    # One "large" server: 12 workers at 25 requests/s each, 24 queue places, so
    # an M/M/12/36 queue, loaded to exactly its capacity (300 requests/s). The
    # run is cut into 10 batches of 100 s (each far longer than the queue's
    # memory of a fraction of a second); the batch means give the standard error.
    rate, c = 300.0, 12
    engine = Scaling(
        {"strategy": "vertical", "start_size": "large", "arrival_rate": rate, **STEADY},
        seed=5,
    )
    engine.advance(10)
    drops, utils = [], []
    for _ in range(10):
        engine.reset_stats()
        engine.advance(100)
        figures = engine.metrics()
        drops.append(figures["drop_ratio"])
        utils.append(figures["utilization"])
    blocking = mmck_blocking(rate, 25.0, c, 3 * c)
    utilization = mmck_utilization(rate, 25.0, c, 3 * c)
    se_drop = statistics.stdev(drops) / math.sqrt(len(drops))
    se_util = statistics.stdev(utils) / math.sqrt(len(utils))
    # 4 standard errors, and never looser than a fixed band (so that a noisy
    # engine cannot pass by being noisy).
    assert abs(statistics.mean(drops) - blocking) < min(4 * se_drop, 0.006)
    assert abs(statistics.mean(utils) - utilization) < min(4 * se_util, 0.004)


def test_horizontal_survives_a_kill_with_n_minus_one_over_n_capacity():
    n, rate, repair = 4, 200.0, 20.0
    engine = Scaling(
        {
            "strategy": "horizontal",
            "servers": n,
            "arrival_rate": rate,
            "repair_s": repair,
            **STEADY,
        },
        seed=6,
    )
    engine.advance(10)
    full = engine.metrics()["capacity_rps"]
    assert full == 400.0
    engine.reset_stats()
    (event,) = engine.apply("kill_server", {"server": 2})
    figures = engine.metrics()
    assert figures["capacity_rps"] == pytest.approx(full * (n - 1) / n)
    assert figures["servers"] == n - 1
    engine.advance(repair - 1)
    figures = engine.metrics()
    assert figures["downtime_s"] == 0.0
    # The three left are two-thirds busy: they still serve everything that comes.
    assert figures["served_rps_recent"] == pytest.approx(rate, rel=0.15)
    assert figures["dropped"] - event["lost"] < 0.01 * figures["arrived"]
    engine.advance(2)
    assert engine.metrics()["capacity_rps"] == full
    assert conserved(engine)


def test_vertical_kill_is_a_full_outage_until_repaired():
    rate, repair = 200.0, 20.0
    engine = Scaling(
        {
            "strategy": "vertical",
            "start_size": "large",
            "arrival_rate": rate,
            "repair_s": repair,
            **STEADY,
        },
        seed=6,
    )
    engine.advance(10)
    engine.reset_stats()
    (event,) = engine.apply("kill_server", {"server": 0})
    assert engine.metrics()["capacity_rps"] == 0.0
    engine.advance(repair - 1)
    figures = engine.metrics()
    assert figures["served_rps_recent"] == 0.0
    assert figures["completed"] == 0
    engine.advance(2)
    figures = engine.metrics()
    assert figures["downtime_s"] == pytest.approx(repair)
    assert figures["capacity_rps"] == 300.0
    # Every arrival in the outage is lost: Poisson, mean rate x repair time.
    mean, sd = expected_dropped(rate, repair)
    assert abs(figures["dropped"] - event["lost"] - mean) < 4 * sd + 0.01 * rate
    assert conserved(engine)


def test_an_upgrade_is_a_short_outage_then_a_bigger_pricier_server():
    engine = Scaling(
        {"strategy": "vertical", "upgrade_downtime_s": 15, **STEADY}, seed=1
    )
    engine.advance(5)
    engine.reset_stats()
    before = engine.metrics()
    (event,) = engine.apply("upgrade")
    assert (event["from"], event["to"]) == ("small", "medium")
    assert engine.metrics()["capacity_rps"] == 0.0
    engine.advance(20)
    after = engine.metrics()
    assert after["downtime_s"] == pytest.approx(15.0)
    assert after["capacity_rps"] == 175.0 and before["capacity_rps"] == 100.0
    assert after["cost_per_hour"] == pytest.approx(2 * before["cost_per_hour"])
    assert after["cost_per_1000_rps"] > before["cost_per_1000_rps"]


def test_a_server_killed_mid_upgrade_comes_back_only_after_its_repair():
    engine = Scaling(
        {"strategy": "vertical", "upgrade_downtime_s": 10, "repair_s": 30, **STEADY},
        seed=1,
    )
    engine.advance(5)
    engine.reset_stats()
    engine.apply("upgrade")
    engine.advance(2)
    engine.apply("kill_server", {"server": 0})
    engine.advance(20)  # the upgrade would have been over by now
    assert engine.metrics()["capacity_rps"] == 0.0
    with pytest.raises(CommandError) as info:
        engine.apply("kill_server", {"server": 0})
    assert "servers running: none" in info.value.message
    engine.advance(15)
    figures = engine.metrics()
    assert figures["capacity_rps"] == 175.0  # repaired at the new size
    assert figures["downtime_s"] == pytest.approx(2 + 30)


def test_under_growing_traffic_horizontal_is_cheaper_and_outgrows_the_largest_server():
    # Traffic grows from 60 to 1860 requests/s in 15 minutes; the largest server
    # serves 1250. Both strategies scale by themselves.
    params = {"arrival_rate": 60, "growth_rps_per_min": 120}
    vertical = run_headless(
        Scaling, {**params, "strategy": "vertical"}, seed=2, duration=900, warmup=0
    ).metrics
    horizontal = run_headless(
        Scaling, {**params, "strategy": "horizontal"}, seed=2, duration=900, warmup=0
    ).metrics
    assert vertical["size"] == "4xlarge" and vertical["capacity_rps"] == 1250.0
    assert vertical["offered_rps"] > vertical["capacity_rps"]
    assert horizontal["capacity_rps"] > horizontal["offered_rps"]
    assert (
        horizontal["cost_per_million_requests"] < vertical["cost_per_million_requests"]
    )
    assert horizontal["cost_per_1000_rps"] == pytest.approx(1.0)  # $0.10/h per 100/s
    assert vertical["cost_per_1000_rps"] == pytest.approx(2.56)  # $3.20/h per 1250/s
    assert vertical["drop_ratio"] > 2 * horizontal["drop_ratio"]
    # Vertical loses time to every upgrade; horizontal never stops serving.
    assert vertical["downtime_s"] == pytest.approx(20.0 * vertical["upgrades"])
    assert horizontal["downtime_s"] == 0.0
    assert horizontal["servers_added"] > 10


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(["vertical", "horizontal"]),
    rate=st.floats(20, 500),
    qpw=st.integers(0, 3),
    actions=st.lists(
        st.tuples(
            st.sampled_from(
                ["advance", "upgrade", "add_server", "kill_server", "spike"]
            ),
            st.integers(0, 4),
        ),
        max_size=14,
    ),
)
def test_requests_are_conserved_and_no_server_is_overfilled(
    strategy, rate, qpw, actions
):
    engine = Scaling(
        {
            "strategy": strategy,
            "arrival_rate": rate,
            "queue_per_worker": qpw,
            "servers": 2,
            "max_servers": 5,
            "growth_rps_per_min": 300,
            "upgrade_downtime_s": 0.5,
            "boot_s": 0.5,
            "repair_s": 1,
            "check_interval_s": 1,
        },
        seed=4,
    )
    for action, arg in actions:
        if action == "advance":
            engine.advance(0.7)
        else:
            args = {"server": arg} if action == "kill_server" else {}
            with contextlib.suppress(CommandError):
                engine.apply(action, args)
        assert conserved(engine)
        for i, state in enumerate(engine.state):
            assert 0 <= engine.busy[i] <= engine.workers[i]
            assert 0 <= engine.queued[i] <= engine.qcap[i]
            if state != 2:  # not up: holds nothing
                assert engine.busy[i] == engine.queued[i] == 0
        figures = engine.metrics()
        assert figures["capacity_rps"] == pytest.approx(
            sum(engine.workers[i] for i in engine.live) * 25.0
        )
        assert 0.0 <= figures["utilization"] <= 1.0 + 1e-9


def test_commands_that_do_not_fit_the_strategy_or_state_say_why():
    vertical = Scaling({"strategy": "vertical", "start_size": "4xlarge"})
    with pytest.raises(CommandError) as info:
        vertical.apply("upgrade")
    assert "largest size (4xlarge)" in info.value.message
    with pytest.raises(CommandError) as info:
        vertical.apply("add_server")
    assert "use upgrade" in info.value.message
    horizontal = Scaling({"strategy": "horizontal", "servers": 3})
    with pytest.raises(CommandError) as info:
        horizontal.apply("upgrade")
    assert "use add_server" in info.value.message
    with pytest.raises(CommandError) as info:
        horizontal.apply("kill_server", {"server": 7})
    assert info.value.field == "kill_server.server"
    assert "servers running: 0, 1, 2" in info.value.message
