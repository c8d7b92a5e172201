"""The provisioning engine: an auto-scaling group, golden images and bare boots."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError
from simulations.engines.runner import make_step
from simulations.theory.availability import (
    instances_needed,
    scale_out_rounds,
    time_to_capacity_bounds,
)

from .golden import assert_golden, trace

Provisioning = get_engine("provisioning")


def conserved(engine) -> bool:
    m = engine.metrics()
    return m["arrived"] == m["completed"] + m["dropped_requests"] + m["in_flight"]


def test_golden_trace_with_spike_kill_commit_deploy_and_bake():
    steps = [
        make_step(Provisioning, 1, "spike", {"factor": 4, "duration_s": 10}),
        make_step(Provisioning, 2, "commit", {}),
        make_step(Provisioning, 3, "kill_instance", {"instance": 0}),
        make_step(Provisioning, 6, "deploy", {}),
        make_step(Provisioning, 7, "bake_image", {}),
    ]
    params = {
        "check_interval_s": 1,
        "cooldown_s": 2,
        "golden_boot_s": 5,
        "bake_s": 2,
        "commit_rate_per_hour": 0,
    }
    frames = trace(Provisioning, params, seed=12, steps=steps, frames=30, dt=0.5)
    assert_golden("provisioning", frames)


SPIKE = {
    "arrival_rate": 120.0,
    "workers": 4,
    "service_ms": 40.0,
    "min_instances": 2,
    "max_instances": 20,
    "cpu_threshold": 0.7,
    "cooldown_s": 60.0,
    "check_interval_s": 10.0,
    "scale_out_step": 2,
    "golden_boot_s": 40.0,
    "bare_boot_s": 300.0,
    "boot_jitter": 0.2,
    "commit_rate_per_hour": 0.0,
}


def time_to_capacity(image: str, seed: int, phase: float) -> tuple[float, int]:
    engine = Provisioning({**SPIKE, "image": image}, seed=seed)
    engine.advance(100 + phase)
    engine.reset_stats()
    engine.apply("spike", {"factor": 5, "duration_s": 900})
    while not engine.metrics()["capacity_met"] and engine.now < 700:
        engine.advance(5)
    figures = engine.metrics()
    assert figures["capacity_met"] == 1
    assert conserved(engine)
    return figures["time_to_capacity_s"], figures["dropped_requests"]


def test_golden_images_reach_capacity_within_the_bound_their_boot_times_imply():
    # 600 requests/s need 6 instances of 100; from 2, in steps of 2: two rounds.
    needed = instances_needed(600.0, 100.0)
    rounds = scale_out_rounds(needed, 2, 2)
    assert (needed, rounds) == (6, 2)
    bounds = {}
    for image, typical in (("golden", 40.0), ("bare", 300.0)):
        # Boot times are uniform in typical x (1 +- 0.2): the bounds are exact,
        # whatever the seed and wherever the spike falls between two checks.
        lo, hi = time_to_capacity_bounds(
            rounds, 10.0, 60.0, 0.8 * typical, 1.2 * typical
        )
        bounds[image] = (lo, hi)
        phases = random.Random(image)
        for seed in range(3):
            took, _ = time_to_capacity(image, seed, phases.uniform(0, 10))
            assert lo <= took <= hi, (image, seed, took, lo, hi)
    # golden: at most 20 + 70 + 48 = 138 s; bare: at least 60 + 240 = 300 s.
    assert bounds["golden"][1] < bounds["bare"][0]


def test_bare_boots_drop_more_requests_in_a_spike_than_golden_ones():
    golden_time, golden_dropped = time_to_capacity("golden", 4, 3.0)
    bare_time, bare_dropped = time_to_capacity("bare", 4, 3.0)
    assert golden_time < bare_time
    assert golden_dropped < bare_dropped / 2


def scale_up(image: str, **extra) -> tuple[object, list[dict]]:
    engine = Provisioning(
        {**SPIKE, "image": image, "golden_boot_s": 20.0, "bare_boot_s": 60.0, **extra},
        seed=7,
    )
    engine.advance(20)
    events = engine.apply("commit")  # main now holds an unreleased commit
    events += engine.apply("spike", {"factor": 5, "duration_s": 600})
    events += engine.advance(240)
    return engine, events


def test_bare_boots_pull_unreleased_code_and_drift_while_golden_ones_do_not():
    bare, events = scale_up("bare")
    ready = [e for e in events if e["type"] == "instance.ready"]
    assert len(ready) >= 4
    assert all(e["version"] == 2 and not e["on_release"] for e in ready)
    figures = bare.metrics()
    assert figures["release_version"] == 1 and figures["main_version"] == 2
    assert figures["version_drift"] == len(ready) == figures["instances"] - 2

    golden, events = scale_up("golden")
    ready = [e for e in events if e["type"] == "instance.ready"]
    assert len(ready) >= 4
    assert all(e["version"] == 1 and e["on_release"] for e in ready)
    assert golden.metrics()["version_drift"] == 0


def test_a_stale_golden_image_drifts_after_a_deploy_until_it_is_baked_again():
    engine = Provisioning({**SPIKE, "golden_boot_s": 20.0, "bake_s": 100.0}, seed=3)
    engine.advance(20)
    engine.apply("commit")
    (deploy,) = engine.apply("deploy")
    assert deploy["version"] == 2 and deploy["image_stale"] and deploy["updated"] == 2
    assert engine.metrics()["version_drift"] == 0
    engine.apply("bake_image")
    engine.apply("spike", {"factor": 5, "duration_s": 600})
    events = engine.advance(400)
    (baked,) = [e["t"] for e in events if e["type"] == "image.baked"]
    assert baked == pytest.approx(120.0)
    launched = {
        name: e["t"]
        for e in events
        if e["type"] == "instance.launch"
        for name in e["instances"]
    }
    ready = [e for e in events if e["type"] == "instance.ready"]
    # Instances launched while the new image was baking boot the stale release.
    stale = [e for e in ready if launched[e["instance"]] < baked]
    fresh = [e for e in ready if launched[e["instance"]] >= baked]
    assert stale and fresh
    assert all(e["version"] == 1 and not e["on_release"] for e in stale)
    assert all(e["version"] == 2 and e["on_release"] for e in fresh)
    assert engine.metrics()["version_drift"] == len(stale)


def test_a_killed_instance_is_replaced_at_once():
    engine = Provisioning({**SPIKE, "golden_boot_s": 30.0}, seed=2)
    engine.advance(50)
    events = engine.apply("kill_instance", {"instance": 1})
    kill, launch = events
    assert kill["instance"] == "i-1" and kill["lost"] >= 0
    assert launch["reason"] == "replace" and launch["instances"] == ["i-2"]
    assert engine.metrics()["instances"] == 1
    events = engine.advance(40)
    assert engine.metrics()["instances"] == 2
    assert conserved(engine)


@settings(max_examples=40, deadline=None)
@given(
    image=st.sampled_from(["golden", "bare"]),
    rate=st.floats(20, 600),
    low=st.integers(1, 3),
    high=st.integers(3, 6),
    actions=st.lists(
        st.tuples(
            st.sampled_from(
                ["advance", "spike", "kill_instance", "bake_image", "commit", "deploy"]
            ),
            st.integers(0, 8),
        ),
        max_size=14,
    ),
)
def test_requests_are_conserved_and_the_group_stays_in_bounds(
    image, rate, low, high, actions
):
    engine = Provisioning(
        {
            "image": image,
            "arrival_rate": rate,
            "min_instances": low,
            "max_instances": high,
            "check_interval_s": 1,
            "cooldown_s": 1,
            "golden_boot_s": 5,
            "bare_boot_s": 10,
            "bake_s": 1,
            "workers": 2,
            "commit_rate_per_hour": 60,
        },
        seed=4,
    )
    for action, arg in actions:
        if action == "advance":
            engine.advance(1.1)
        else:
            args = {"instance": arg} if action == "kill_instance" else {}
            with contextlib.suppress(CommandError):
                engine.apply(action, args)
        assert conserved(engine)
        for i, state in enumerate(engine.state):
            assert 0 <= engine.busy[i] <= 2
            assert 0 <= engine.queued[i] <= 4
            if state in (0, 1):  # terminated or booting: holds no request
                assert engine.busy[i] == engine.queued[i] == 0
        figures = engine.metrics()
        assert figures["instances"] + figures["instances_booting"] <= high
        assert figures["version_drift"] <= figures["instances"]


def test_killing_a_missing_instance_or_baking_twice_says_what_is_possible():
    engine = Provisioning()
    with pytest.raises(CommandError) as info:
        engine.apply("kill_instance", {"instance": 9})
    assert info.value.field == "kill_instance.instance"
    assert "running: 0, 1" in info.value.message
    engine.apply("bake_image")
    with pytest.raises(CommandError) as info:
        engine.apply("bake_image")
    assert "already being baked" in info.value.message
