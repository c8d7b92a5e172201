"""Queueing theory beside the balancer: the formulas, and the engine's predictions."""

from __future__ import annotations

import io
import json
import math
import time

import pytest
from django.core.management import call_command

from simulations.engines import get_engine
from simulations.theory.queueing import (
    ekm1_mean_time,
    ekm1_sigma,
    mg1_mean_time,
    mm1_mean_time,
    supermarket_mean_time,
)

Balancer = get_engine("balancer")


# The formulas against published figures ----------------------------------------


@pytest.mark.parametrize(
    ("lam", "expected"),
    [(0.5, 1.2657), (0.7, 1.6145), (0.8, 1.9474), (0.9, 2.6141), (0.99, 5.4320)],
)
def test_the_supermarket_model_gives_mitzenmachers_expected_times_for_two_choices(
    lam, expected
):
    # Mitzenmacher, "The power of two choices in randomized load balancing",
    # IEEE TPDS 12(10), 2001, Table 1: the predicted expected time in system of
    # the supermarket model (service rate 1) for d = 2, e.g. about 2.61 at
    # lambda = 0.9 against 10 for one choice.
    assert supermarket_mean_time(lam, 1.0, 2) == pytest.approx(expected, abs=5e-4)


def test_one_choice_is_the_mm1_queue_and_two_choices_are_exponentially_better():
    # Mitzenmacher 2001: d = 1 is the M/M/1 queue, 1 / (1 - lambda) = 10 at 0.9
    # and 100 at 0.99, while d = 2 stays near 2.6 and 5.4.
    assert supermarket_mean_time(0.9, 1.0, 1) == pytest.approx(10.0)
    assert supermarket_mean_time(0.99, 1.0, 1) == pytest.approx(100.0)
    assert (
        supermarket_mean_time(0.99, 1.0, 2) < supermarket_mean_time(0.99, 1.0, 1) / 18
    )


def test_erlang_two_arrivals_give_kleinrocks_closed_form_root():
    # Kleinrock, Queueing Systems vol. 1 (1975), 6.4: for E_2/M/1 the GI/M/1
    # root is sigma = (1 + 4 rho - sqrt(1 + 8 rho)) / 2, and T = 1 / (mu (1 - sigma)).
    for rho in (0.3, 0.5, 0.8, 0.95):
        sigma = (1 + 4 * rho - math.sqrt(1 + 8 * rho)) / 2
        assert ekm1_sigma(2, rho, 1.0) == pytest.approx(sigma, abs=1e-12)
        assert ekm1_mean_time(2, rho, 1.0) == pytest.approx(1 / (1 - sigma))


def test_erlang_arrivals_go_from_mm1_to_dm1_as_the_stages_grow():
    # k = 1 is M/M/1 (sigma = rho); k -> infinity is D/M/1, whose root at
    # rho = 0.8 is 0.6286 (sigma = exp(-(1 - sigma) / rho); Gross & Harris,
    # Fundamentals of Queueing Theory, D/M/1 example).
    assert ekm1_sigma(1, 0.8, 1.0) == pytest.approx(0.8, abs=1e-12)
    assert ekm1_mean_time(1, 8.0, 10.0) == pytest.approx(mm1_mean_time(8.0, 10.0))
    assert ekm1_sigma(5000, 0.8, 1.0) == pytest.approx(0.6286, abs=2e-4)


def test_pollaczek_khinchine_gives_the_mm1_and_md1_figures():
    # Exponential service (E[S^2] = 2 / mu^2) gives M/M/1; fixed service gives
    # M/D/1, whose wait is half the M/M/1 one: W = rho / (2 mu (1 - rho)).
    assert mg1_mean_time(8.0, 0.1, 0.02) == pytest.approx(mm1_mean_time(8.0, 10.0))
    assert mg1_mean_time(8.0, 0.1, 0.01) == pytest.approx(0.1 + 0.8 / (2 * 10 * 0.2))


def test_the_formulas_refuse_a_load_at_or_above_one():
    with pytest.raises(ValueError, match="unstable"):
        ekm1_mean_time(3, 10.0, 10.0)
    with pytest.raises(ValueError, match="unstable"):
        mg1_mean_time(12.0, 0.1, 0.02)


# The engine's predictions against long seeded runs -----------------------------


def run(params, *, seed=7, warmup=50.0, duration=1500.0):
    """Return the engine's theory and the figures measured after ``warmup``."""
    engine = Balancer(params, seed=seed)
    engine.advance(warmup)
    engine.reset_stats()
    engine.advance(duration)
    values, gaps = engine.theory()
    return values, gaps, engine.metrics()


@pytest.mark.parametrize(
    ("params", "duration"),
    [
        # Random: five M/M/1/K queues at load 0.8 (T = 0.5 s).
        ({"strategy": "random"}, 1500.0),
        # Round robin: five E_5/M/1 queues at load 0.8.
        ({"strategy": "round_robin"}, 1500.0),
        # IP hash: Poisson per server, at the share of the clients hashed to it.
        ({"strategy": "ip_hash", "arrival_rate": 25.0}, 3000.0),
        # Random with API calls three times as costly: M/G/1 (Pollaczek-Khinchine).
        (
            {
                "strategy": "random",
                "arrival_rate": 20.0,
                "api_share": 0.3,
                "api_cost": 3.0,
                "queue_limit": 10_000,
            },
            3000.0,
        ),
        # Power of two over many servers: the supermarket model, load 0.9.
        (
            {
                "strategy": "power_of_two",
                "servers": 100,
                "arrival_rate": 900.0,
                "api_share": 0.0,
            },
            300.0,
        ),
    ],
    ids=["random", "round_robin", "ip_hash", "random_mg1", "power_of_two"],
)
def test_the_predicted_mean_latency_matches_a_long_seeded_run(params, duration):
    values, gaps, m = run(params, duration=duration)
    assert not gaps
    # Tolerance 5 %: the runs hold 40,000 to 270,000 requests, and the
    # supermarket model is the n -> infinity limit (100 servers here).
    assert m["mean_latency_s"] == pytest.approx(values["mean_latency_s"], rel=0.05)
    assert m["throughput_per_s"] == pytest.approx(values["throughput_per_s"], rel=0.02)


def test_random_routing_predicts_the_drops_of_a_short_queue():
    # Queues of 3 at load 0.9 turn away about a fifth of the requests (M/M/1/K).
    values, gaps, m = run(
        {"strategy": "random", "arrival_rate": 45.0, "queue_limit": 3}
    )
    assert not gaps
    assert values["throughput_per_s"] < 0.8 * 45.0
    assert m["throughput_per_s"] == pytest.approx(values["throughput_per_s"], rel=0.02)
    assert m["mean_latency_s"] == pytest.approx(values["mean_latency_s"], rel=0.03)


def test_the_prediction_follows_the_servers_in_rotation_after_a_kill():
    engine = Balancer({"strategy": "random", "arrival_rate": 30.0}, seed=1)
    before = engine.theory()[0]["mean_latency_s"]
    assert before == pytest.approx(mm1_mean_time(6.0, 10.0), rel=1e-3)
    engine.apply("kill", {"server": 1})
    engine.advance(1.5)  # the health check takes server 1 out of rotation
    after = engine.theory()[0]["mean_latency_s"]
    assert after == pytest.approx(mm1_mean_time(7.5, 10.0), rel=1e-3)


def test_computing_the_theory_leaves_the_world_untouched():
    engine = Balancer({"strategy": "ip_hash", "clients": 10_000}, seed=3)
    engine.advance(5.0)
    state = engine.snapshot()
    engine.compute_theory()
    engine.picture()
    assert engine.snapshot() == state


def test_the_largest_settings_are_predicted_quickly():
    engine = Balancer(
        {"strategy": "ip_hash", "clients": 10_000, "servers": 200, "arrival_rate": 1e4}
    )
    start = time.process_time()
    for _ in range(10):
        engine.compute_theory()
    # Loose: a tenth of the 20 ms budget per call would be 2 ms; this only
    # catches an accidental O(clients * servers) or a runaway iteration.
    assert (time.process_time() - start) / 10 < 0.02


# Where there is no prediction ---------------------------------------------------


def test_a_load_at_or_above_one_has_no_line_and_says_why():
    engine = Balancer({"strategy": "random", "arrival_rate": 60.0})
    values, gaps = engine.theory()
    assert values == {}
    assert gaps["mean_latency_s"].startswith("load is 1.20, at or above 1")


def test_the_slowest_server_sets_the_limit_of_random_routing():
    # Mean load 0.8, but with speeds from 0.5 to 1.5 the slowest one gets 1.6.
    engine = Balancer({"strategy": "random", "speed_spread": 0.5})
    gaps = engine.theory()[1]
    assert "busiest server's 1.60" in gaps["mean_latency_s"]


def test_least_connections_names_the_shared_queue_lower_bound_instead_of_a_line():
    values, gaps, m = run({"strategy": "least_connections", "api_share": 0.0})
    assert "mean_latency_s" not in values
    assert "no closed form" in gaps["mean_latency_s"]
    bound = float(gaps["mean_latency_s"].split("give ")[1].split(" s")[0])
    assert bound < m["mean_latency_s"] < supermarket_mean_time(8.0, 10.0)


@pytest.mark.parametrize(
    "strategy", ["least_cpu", "weighted_round_robin", "dns_round_robin"]
)
def test_strategies_without_a_standard_model_say_so(strategy):
    values, gaps = Balancer({"strategy": strategy}).theory()
    assert values == {}
    assert gaps["mean_latency_s"] == (
        f"no standard closed form for {strategy.replace('_', ' ')}"
    )


def test_models_with_unbounded_queues_step_aside_for_a_short_queue_limit():
    values, gaps = Balancer({"strategy": "round_robin", "queue_limit": 5}).theory()
    assert values == {}
    assert "queues of at most 5 fill too often" in gaps["mean_latency_s"]


# The command line --------------------------------------------------------------


def test_simulate_json_prints_the_theory_beside_the_metrics():
    out = io.StringIO()
    call_command(
        "simulate", "balancer", "--json", "--duration", "20", "--seed", "1", stdout=out
    )
    data = json.loads(out.getvalue())
    assert data["theory"]["mean_latency_s"] == pytest.approx(0.3152, abs=1e-3)
    assert data["theory"]["throughput_per_s"] == pytest.approx(40.0)
    assert "theory_gaps" not in data
