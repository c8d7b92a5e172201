"""The failover engine: heartbeats, a standby taking the virtual IP, split brain."""

from __future__ import annotations

import contextlib
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError
from simulations.engines.runner import make_step
from simulations.theory.availability import (
    detection_bounds,
    expected_dropped,
    failover_outage_bounds,
    failover_outage_sd,
    mean_failover_outage,
)

from .golden import assert_golden, trace

Failover = get_engine("failover")


def conserved(engine) -> bool:
    m = engine.metrics()
    return m["arrived"] == m["completed"] + m["dropped_requests"] + m["in_flight"]


def test_golden_trace_with_kill_revive_partition_and_heal():
    steps = [
        make_step(Failover, 2, "kill_active", {}),
        make_step(Failover, 6, "revive", {}),
        make_step(Failover, 7, "partition", {}),
        make_step(Failover, 11, "heal", {}),
    ]
    params = {
        "arrival_rate": 80,
        "heartbeat_interval_s": 0.5,
        "missed_heartbeats": 3,
        "takeover_s": 1.0,
        "backends": 2,
        "backend_workers": 4,
    }
    frames = trace(Failover, params, seed=4, steps=steps, frames=28, dt=0.5)
    assert_golden("failover", frames)
    kinds = [e["type"] for f in frames for e in f["events"]]
    for kind in ("balancer.down", "balancer.failover", "balancer.split_brain"):
        assert kind in kinds


def run_kills(params, kills, seed, period=15.0, revive_after=10.0):
    """Kill the active at a random phase of each period; revive it later.

    Return the engine and the failover events.
    """
    engine = Failover(params, seed=seed)
    phases = random.Random(seed)
    engine.advance_to(10.0)
    engine.reset_stats()
    failovers = []
    for k in range(kills):
        start = 10.0 + k * period
        engine.advance_to(start + phases.uniform(0.0, 4.0))
        engine.apply("kill_active")
        events = engine.advance_to(start + revive_after)
        engine.apply("revive")
        failovers += [e for e in events if e["type"] == "balancer.failover"]
        engine.advance_to(start + period)
    return engine, failovers


def test_failover_outage_lies_between_the_heartbeat_bounds_and_drops_follow_it():
    h, missed, takeover, rate, kills = 1.0, 3, 2.0, 2000.0, 60
    params = {
        "arrival_rate": rate,
        "heartbeat_interval_s": h,
        "missed_heartbeats": missed,
        "takeover_s": takeover,
    }
    engine, failovers = run_kills(params, kills, seed=21)
    figures = engine.metrics()
    assert figures["failovers"] == len(failovers) == kills

    # Every single failover: detection in ((missed-1) h, missed h], exactly.
    lo, hi = detection_bounds(h, missed)
    out_lo, out_hi = failover_outage_bounds(h, missed, takeover)
    for event in failovers:
        assert lo < event["detection_s"] <= hi + 1e-9
        assert event["takeover_s"] == pytest.approx(takeover)
        assert out_lo < event["outage_s"] <= out_hi + 1e-9
    outage = figures["outage_s"]
    assert outage == pytest.approx(math.fsum(e["outage_s"] for e in failovers))
    assert kills * out_lo < outage <= kills * out_hi + 1e-6

    # The kills fall at a uniform phase of the beat, so the mean outage is
    # (missed - 1/2) h + takeover; each outage has sd h/sqrt(12), and the mean
    # of 60 is within 4 standard errors (0.15 s) of it.
    mean = outage / kills
    se = failover_outage_sd(h) / math.sqrt(kills)
    assert abs(mean - mean_failover_outage(h, missed, takeover)) < 4 * se

    # Given the outage (set by the beats, not by the arrivals), the requests that
    # found no balancer are Poisson with mean rate x outage: 4 sd is about 1.6 %.
    expected, sd = expected_dropped(rate, outage)
    assert abs(figures["dropped_no_balancer"] - expected) < 4 * sd
    assert abs(figures["availability"] - (1 - outage / (kills * 15.0))) < 1e-9

    # Each kill also cuts the connections in flight: with workers to spare the
    # backends are M/M/infinity, so that count is Poisson, mean rate x service time.
    cut_mean = kills * rate * params.get("service_ms", 50.0) / 1000
    assert abs(figures["dropped_cut"] - cut_mean) < 4 * math.sqrt(cut_mean)
    assert figures["dropped_requests"] == (
        figures["dropped_no_balancer"]
        + figures["dropped_cut"]
        + figures["dropped_overload"]
    )
    assert conserved(engine)


def test_shorter_heartbeats_make_shorter_outages():
    slow, _ = run_kills(
        {"heartbeat_interval_s": 2.0, "takeover_s": 1.0},
        8,
        seed=3,
        period=20.0,
        revive_after=15.0,
    )
    fast, _ = run_kills(
        {"heartbeat_interval_s": 0.2, "takeover_s": 1.0},
        8,
        seed=3,
        period=20.0,
        revive_after=15.0,
    )
    # 3 missed beats of 2 s take more than 4 s; of 0.2 s at most 0.6 s.
    assert slow.metrics()["mean_failover_outage_s"] > 5.0
    assert fast.metrics()["mean_failover_outage_s"] < 1.6


def test_without_a_standby_the_balancer_is_down_until_repaired():
    rate, repair = 500.0, 30.0
    engine = Failover(
        {"standby": False, "arrival_rate": rate, "repair_s": repair}, seed=8
    )
    engine.advance(10)
    engine.reset_stats()
    engine.apply("kill_active")
    engine.advance(repair - 1)
    assert engine.metrics()["active_balancers"] == 0
    assert engine.metrics()["served_rps_recent"] == 0
    events = engine.advance(11)
    assert any(e["type"] == "balancer.up" and e["reason"] == "repaired" for e in events)
    figures = engine.metrics()
    assert figures["failovers"] == 0
    assert figures["outage_s"] == pytest.approx(repair)
    assert figures["availability"] == pytest.approx(1 - repair / 40)
    expected, sd = expected_dropped(rate, repair)
    assert abs(figures["dropped_no_balancer"] - expected) < 4 * sd
    assert conserved(engine)


def test_revive_ends_a_single_balancer_outage_early():
    engine = Failover({"standby": False, "repair_s": 600}, seed=2)
    engine.advance(5)
    engine.reset_stats()
    engine.apply("kill_active")
    engine.advance(4)
    engine.apply("revive")
    engine.advance(6)
    figures = engine.metrics()
    assert figures["outage_s"] == pytest.approx(4.0)
    assert figures["served_rps_recent"] > 200


def test_a_partition_gives_split_brain_until_healed_then_the_newer_steps_down():
    h, missed, takeover = 0.5, 3, 1.0
    engine = Failover(
        {
            "heartbeat_interval_s": h,
            "missed_heartbeats": missed,
            "takeover_s": takeover,
            "arrival_rate": 1000,
        },
        seed=5,
    )
    engine.advance(5)
    engine.reset_stats()
    events = engine.apply("partition")
    events += engine.advance(missed * h + takeover + 0.5)
    split = [e for e in events if e["type"] == "balancer.split_brain"]
    assert len(split) == 1 and not split[0]["resolved"]
    figures = engine.metrics()
    assert figures["active_balancers"] == 2
    assert figures["balancer_state"] == [3, 3]
    assert figures["outage_s"] == 0.0  # the old active never stopped serving
    engine.advance(5)
    # Both balancers carry traffic: the clients' requests are split between them.
    assert min(engine.inflight) > 0
    events = engine.apply("heal")
    events += engine.advance(h + 0.25)
    resolved = [
        e for e in events if e["type"] == "balancer.split_brain" and e["resolved"]
    ]
    assert len(resolved) == 1
    assert resolved[0]["kept"] == "lb-a" and resolved[0]["stepped_down"] == "lb-b"
    assert resolved[0]["cut"] > 0
    figures = engine.metrics()
    assert figures["active_balancers"] == 1
    # Split from partition + detection + takeover until the first beat after heal.
    lo, hi = detection_bounds(h, missed)
    start_lo, start_hi = lo + takeover, hi + takeover
    total = missed * h + takeover + 0.5 + 5
    assert total - start_hi <= figures["split_brain_s"] <= total - start_lo + h
    assert conserved(engine)


@settings(max_examples=40, deadline=None)
@given(
    standby=st.booleans(),
    workers=st.integers(1, 6),
    rate=st.floats(50, 600),
    h=st.floats(0.05, 1.0),
    actions=st.lists(
        st.sampled_from(
            ["advance", "kill_active", "revive", "partition", "heal", "toggle_standby"]
        ),
        max_size=14,
    ),
)
def test_requests_are_conserved_and_backends_never_overfilled(
    standby, workers, rate, h, actions
):
    engine = Failover(
        {
            "standby": standby,
            "backend_workers": workers,
            "arrival_rate": rate,
            "heartbeat_interval_s": h,
            "missed_heartbeats": 2,
            "takeover_s": 0.3,
            "repair_s": 2.0,
            "backends": 3,
        },
        seed=2,
    )
    for action in actions:
        if action == "advance":
            engine.advance(0.6)
        elif action == "toggle_standby":
            engine.set_param("standby", not engine.p["standby"])
        else:
            with contextlib.suppress(CommandError):
                engine.apply(action)
        figures = engine.metrics()
        assert conserved(engine)
        assert all(0 <= b <= workers for b in engine.busy)
        assert figures["active_balancers"] <= (2 if engine.p["standby"] else 1)
        assert figures["outage_s"] <= engine.now + 1e-9
        assert 0.0 <= figures["availability"] <= 1.0


def test_commands_that_make_no_sense_now_say_why():
    single = Failover({"standby": False})
    with pytest.raises(CommandError) as info:
        single.apply("partition")
    assert info.value.field == "partition" and "standby" in info.value.message
    with pytest.raises(CommandError) as info:
        single.apply("revive")
    assert (
        "no balancer is down" in info.value.message
        and "lb-a active" in info.value.message
    )
    single.apply("kill_active")
    with pytest.raises(CommandError) as info:
        single.apply("kill_active")
    assert "lb-a down" in info.value.message
    with pytest.raises(CommandError) as info:
        Failover().apply("heal")
    assert info.value.field == "heal"
