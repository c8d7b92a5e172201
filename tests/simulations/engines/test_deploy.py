"""The deploy engine: all at once, rolling, blue/green and atomic releases."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError, ParamError
from simulations.engines.runner import make_step

from .golden import assert_golden, trace

Deploy = get_engine("deploy")

FAST = {"install_s": 10.0, "health_interval_s": 1.0, "health_timeout_s": 20.0}


def run(params, command="deploy", seconds=120.0, warmup=5.0, seed=1, step=0.25):
    """Warm up, reset, give ``command``, run ``seconds``; return the engine and events."""
    engine = Deploy({**FAST, **params}, seed=seed)
    engine.advance(warmup)
    engine.reset_stats()
    events = engine.apply(command) if command else []
    end = engine.now + seconds
    while engine.now < end - 1e-9:
        events += engine.advance(step)
    return engine, events


def test_golden_trace_of_a_rolling_deploy_rolled_back_midway():
    steps = [make_step(Deploy, 0.5, "deploy", {}), make_step(Deploy, 5, "rollback", {})]
    frames = trace(
        Deploy,
        {
            "servers": 4,
            "batch_size": 1,
            "incompatible": True,
            "request_rate": 50,
            "install_s": 2,
            "health_interval_s": 0.5,
            "health_timeout_s": 5,
        },
        seed=7,
        steps=steps,
        frames=24,
        dt=0.5,
    )
    assert_golden("deploy", frames)


def test_golden_trace_of_a_bad_atomic_release_rolled_back():
    steps = [make_step(Deploy, 0.5, "deploy_bad", {})]
    frames = trace(
        Deploy,
        {
            "servers": 3,
            "strategy": "atomic",
            "request_rate": 40,
            "install_s": 2,
            "health_interval_s": 0.5,
            "health_timeout_s": 3,
        },
        seed=3,
        steps=steps,
        frames=20,
        dt=0.5,
    )
    assert_golden("deploy_atomic_bad", frames)


def test_all_at_once_is_down_for_about_the_install_time():
    engine, events = run(
        {"strategy": "all_at_once", "install_s": 20.0, "request_rate": 100}
    )
    figures = engine.metrics()
    # Every server stops at once, installs for 20 s, and takes traffic again at
    # the balancer's next probe: within one probe interval (1 s) after that.
    assert 20.0 <= figures["downtime_s"] <= 21.0
    # Every request in the outage fails: Poisson with mean 100/s x downtime;
    # five standard deviations (about 230) bound it.
    expected = 100 * figures["downtime_s"]
    assert abs(figures["error_requests"] - expected) < 5 * math.sqrt(expected)
    assert figures["min_capacity"] == 0
    assert figures["mixed_version_s"] == 0
    assert figures["server_versions"] == [2] * 6


@pytest.mark.parametrize("strategy", ["blue_green", "atomic"])
def test_blue_green_and_atomic_release_without_downtime_or_mixing(strategy):
    engine, events = run({"strategy": strategy, "incompatible": True, "servers": 5})
    figures = engine.metrics()
    assert figures["deploys"] == 1
    assert figures["downtime_s"] == 0
    assert figures["error_requests"] == 0
    assert figures["mixed_version_s"] == 0
    assert figures["min_capacity"] == 5
    assert figures["capacity"] == figures["servers_newest"] == 5
    # The price of blue/green: a second fleet runs beside the first.
    assert figures["peak_servers"] == (10 if strategy == "blue_green" else 5)


@pytest.mark.parametrize(("servers", "batch"), [(6, 1), (6, 2), (7, 3)])
def test_rolling_keeps_capacity_above_servers_minus_batch(servers, batch):
    engine, events = run({"servers": servers, "batch_size": batch})
    figures = engine.metrics()
    assert figures["deploys"] == 1
    assert figures["min_capacity"] == servers - batch
    assert figures["downtime_s"] == 0
    assert figures["mixed_version_s"] > 0
    # Compatible versions: side by side is harmless.
    assert figures["error_requests"] == 0
    batches = [e for e in events if e["type"] == "deploy.batch"]
    assert len(batches) == math.ceil(servers / batch)


def test_rolling_with_incompatible_versions_fails_only_while_they_are_mixed():
    rate = 400.0
    engine = Deploy(
        {
            **FAST,
            "servers": 6,
            "batch_size": 2,
            "incompatible": True,
            "request_rate": rate,
        },
        seed=5,
    )
    engine.advance(5)
    engine.reset_stats()
    engine.apply("deploy")
    mixed_before = crossing_before = 0.0
    changes = []
    for _ in range(400):
        changes += [e for e in engine.advance(0.25) if e["type"] == "balancer.changed"]
        figures = engine.metrics()
        new_errors = figures["crossing_errors"] - crossing_before
        if new_errors:
            # Failures in a quarter second only if versions were mixed in it.
            assert figures["mixed_version_s"] > mixed_before
        mixed_before, crossing_before = (
            figures["mixed_version_s"],
            figures["crossing_errors"],
        )
    assert figures["error_requests"] == figures["crossing_errors"] > 0
    # The theory of it: a page and its follow-up go to two servers picked at
    # random, so with a share f of the servers on the new version a request
    # fails with probability 2 f (1 - f). Summed over the balancer's changes the
    # failures are Poisson with mean rate x integral of 2 f (1 - f) dt.
    expected = 0.0
    for change, following in zip(changes, changes[1:] + [{"t": engine.now}]):
        versions = change["versions"]
        f = sum(1 for v in versions if v == 2) / len(versions) if versions else 0.0
        expected += rate * 2 * f * (1 - f) * (following["t"] - change["t"])
    assert expected > 1000
    # Five standard deviations of a Poisson count.
    assert abs(figures["crossing_errors"] - expected) < 5 * math.sqrt(expected)


@pytest.mark.parametrize("strategy", ["all_at_once", "rolling", "blue_green", "atomic"])
def test_rollback_returns_every_server_to_the_previous_release(strategy):
    engine, _ = run({"strategy": strategy}, seconds=80)
    assert engine.metrics()["release"] == 2
    events = engine.apply("rollback")
    assert events[0]["type"] == "deploy.started" and events[0]["kind"] == "rollback"
    if strategy == "blue_green":
        # The old fleet is still running: the switch back is instant.
        kinds = [e["type"] for e in events]
        assert "deploy.switched" in kinds and kinds[-1] == "deploy.finished"
        assert engine.metrics()["capacity"] == 6
    for _ in range(80):
        events += engine.advance(1)
    figures = engine.metrics()
    assert figures["release"] == 1
    assert (
        figures["server_versions"][:6] == [1] * 6
        or figures["server_versions"][-6:] == [1] * 6
    )
    assert figures["capacity"] == 6
    assert engine.plan is None


def test_a_bad_release_fails_its_health_checks_and_rolls_back_by_strategy():
    rolling, _ = run({"strategy": "rolling", "batch_size": 2}, command="deploy_bad")
    blue_green, _ = run({"strategy": "blue_green"}, command="deploy_bad")
    atomic, _ = run({"strategy": "atomic", "request_rate": 100}, command="deploy_bad")
    for engine in (rolling, blue_green, atomic):
        figures = engine.metrics()
        assert (figures["failed_deploys"], figures["release"]) == (1, 1)
        assert figures["server_versions"][-6:] == [1] * 6
    # Rolling and blue/green never let the bad version take traffic.
    assert rolling.metrics()["error_requests"] == 0
    assert rolling.metrics()["min_capacity"] == 4
    assert blue_green.metrics()["error_requests"] == 0
    assert blue_green.metrics()["min_capacity"] == 6
    # Atomic switched everyone to it: down from the switch until the deploy tool
    # gave up (20 s) and switched back, plus at most one probe interval.
    figures = atomic.metrics()
    assert 20.0 <= figures["downtime_s"] <= 21.0
    assert figures["error_requests"] > 0.9 * 100 * 20


def test_without_auto_rollback_a_bad_all_at_once_release_stays_down_until_rolled_back():
    engine, _ = run(
        {"strategy": "all_at_once", "auto_rollback": False},
        command="deploy_bad",
        seconds=60,
    )
    figures = engine.metrics()
    assert figures["capacity"] == 0 and figures["downtime_s"] == pytest.approx(60)
    engine.apply("rollback")
    engine.advance(12)
    assert engine.metrics()["capacity"] == 6
    assert 70 < engine.metrics()["downtime_s"] < 71


@settings(max_examples=200, deadline=None)
@given(
    strategy=st.sampled_from(["all_at_once", "rolling", "blue_green", "atomic"]),
    servers=st.integers(1, 8),
    batch=st.integers(1, 8),
    incompatible=st.booleans(),
    actions=st.lists(
        st.sampled_from(
            ["advance", "advance", "deploy", "deploy_bad", "rollback", "resize"]
        ),
        max_size=12,
    ),
    new_size=st.integers(1, 8),
)
def test_requests_are_conserved_and_the_fleet_stays_within_its_bounds(
    strategy, servers, batch, incompatible, actions, new_size
):
    engine = Deploy(
        {
            "strategy": strategy,
            "servers": servers,
            "batch_size": min(batch, servers),
            "incompatible": incompatible,
            "request_rate": 50,
            "install_s": 2,
            "health_interval_s": 0.5,
            "health_timeout_s": 3,
        },
        seed=1,
    )
    ok = failed = 0
    for action in actions:
        events = []
        try:
            if action == "advance":
                events = engine.advance(2.5)
            elif action == "resize":
                events = engine.set_param(
                    "servers", max(new_size, engine.p["batch_size"])
                )
            else:
                events = engine.apply(action)
        except (CommandError, ParamError) as exc:
            # Refused only for a reason a user can act on.
            assert engine.plan is not None or exc.field == "rollback"
        events += engine.advance(0.5)
        ok += sum(e["count"] for e in events if e["type"] == "request.ok")
        failed += sum(e["count"] for e in events if e["type"] == "request.error")
        figures = engine.metrics()
        n = engine.p["servers"]
        # Every request either got its answer or failed; none is lost.
        assert figures["requests"] == ok + failed
        assert figures["error_requests"] == failed
        # Capacity: the balancer sends traffic to one fleet of at most n servers,
        # only to registered servers that passed their last probe.
        assert figures["capacity"] <= len(engine.rotation) <= n
        assert all(engine.registered[i] and engine.healthy[i] for i in engine.rotation)
        assert sum(1 for v in engine.run if v) <= 2 * n
        assert len(engine.fleets[0]) == len(engine.fleets[1]) == n
        assert not set(engine.fleets[0]) & set(engine.fleets[1])
        # Every server of both fleets is health-checked, by one chain of probes.
        live_probes = sorted(
            server
            for t, _, kind, server, tag in engine.heap
            if kind == 0
            and t < math.inf
            and engine.active[server]
            and tag == engine.probe_gen[server]
        )
        assert live_probes == sorted(engine.fleets[0] + engine.fleets[1])
        if not incompatible:
            assert figures["crossing_errors"] == 0
        if figures["mixed_version_s"] == 0:
            assert figures["crossing_errors"] == 0


def test_commands_refused_name_the_reason():
    engine = Deploy()
    with pytest.raises(CommandError) as info:
        engine.apply("rollback")
    assert info.value.field == "rollback"
    assert "version 1 is the first release" in info.value.message
    engine.apply("deploy")
    with pytest.raises(CommandError) as info:
        engine.apply("deploy")
    assert "a deploy to version 2 is in progress" in info.value.message
    with pytest.raises(ParamError) as info:
        engine.set_param("servers", 8)
    assert info.value.field == "servers"
    assert "only between deploys" in info.value.message
