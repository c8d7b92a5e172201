"""Queueing theory beside the queue and scaling engines.

The formulas are checked against published figures, and each engine's
``compute_theory`` against a long seeded run of the engine itself.
"""

from __future__ import annotations

import io
import json
import math
import pickle

import pytest
from django.core.management import call_command

from simulations.engines import REGISTRY
from simulations.engines.queue import QueueEngine
from simulations.engines.scaling import ScalingEngine
from simulations.theory.availability import mmck_blocking, mmck_utilization
from simulations.theory.erlang import (
    erlang_b,
    erlang_c,
    mmc_mean_wait,
    mmc_poll_figures,
    mmc_timeout_figures,
    mmck_figures,
)

# Published figures -----------------------------------------------------------


def test_erlang_b_matches_the_traffic_tables():
    # Erlang B tables (e.g. Cooper, Introduction to Queueing Theory, 2nd ed.,
    # table I; any telephone-traffic table): 10 circuits offered 5 erlangs
    # block 1.838 % of calls; 1 circuit offered 1 erlang blocks half.
    assert erlang_b(10, 5.0) == pytest.approx(0.01838, abs=5e-6)
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    # 20 circuits at 1 % blocking carry 12.03 erlangs (the same tables).
    assert erlang_b(20, 12.03) == pytest.approx(0.0100, abs=5e-5)


def test_erlang_c_matches_the_tables_and_harchol_balter():
    # Erlang C tables: 10 agents, 8 erlangs: 40.92 % of calls wait.
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=5e-5)
    # Harchol-Balter, Performance Modeling and Design of Computer Systems,
    # ch. 14: for M/M/2, P(wait) = 2 rho^2 / (1 + rho); rho = 0.5 gives 1/3.
    assert erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0)
    # M/M/1 (Kleinrock, Queueing Systems I, ch. 3): W_q = rho / (mu - lambda).
    assert mmc_mean_wait(8.0, 10.0, 1) == pytest.approx(0.8 / 2.0)


def test_a_finite_waiting_room_matches_kleinrock_and_its_limits():
    # M/M/1/K (Kleinrock, Queueing Systems I, section 3.6): blocking is
    # (1 - rho) rho^K / (1 - rho^(K+1)); here K = 1 + 4 places.
    rho, k = 0.8, 5
    expected = (1 - rho) * rho**k / (1 - rho ** (k + 1))
    assert mmck_figures(8.0, 10.0, 1, 4)["blocking"] == pytest.approx(expected)
    # The term-by-term M/M/c/K of availability.py, under and over load.
    for lam in (30.0, 50.0):
        fig = mmck_figures(lam, 10.0, 4, 10)
        assert fig["blocking"] == pytest.approx(mmck_blocking(lam, 10.0, 4, 14))
        assert fig["utilization"] == pytest.approx(mmck_utilization(lam, 10.0, 4, 14))
    # A million places: Erlang C under load; under overload the excess
    # 1 - 1/rho is turned away (the closed forms, not a million terms).
    big = mmck_figures(30.0, 10.0, 4, 1_000_000)
    assert big["p_wait"] == pytest.approx(erlang_c(4, 3.0))
    assert big["mean_wait_s"] == pytest.approx(mmc_mean_wait(30.0, 10.0, 4))
    over = mmck_figures(50.0, 10.0, 4, 1_000_000)
    assert over["blocking"] == pytest.approx(1 - 1 / 1.25)


def test_a_timeout_matches_the_single_server_formula_and_erlang_c():
    # M/M/1+D (Baccelli, Boyer and Hebuterne, "Single-server queues with
    # impatient customers", Adv. Appl. Prob. 16, 1984): the share that gives up
    # is (1 - rho) rho e^(-(mu - lambda) D) / (1 - rho^2 e^(-(mu - lambda) D)).
    lam, mu, d = 8.0, 10.0, 0.3
    rho, e = lam / mu, math.exp(-(mu - lam) * d)
    expected = (1 - rho) * rho * e / (1 - rho**2 * e)
    assert mmc_timeout_figures(lam, mu, 1, d)["p_timeout_waiting"] == pytest.approx(
        expected
    )
    # A timeout nobody reaches is plain M/M/c.
    fig = mmc_timeout_figures(30.0, 10.0, 4, 1000.0)
    assert fig["p_wait"] == pytest.approx(erlang_c(4, 3.0))
    assert fig["mean_wait_s"] == pytest.approx(mmc_mean_wait(30.0, 10.0, 4))
    assert fig["mean_response_s"] == pytest.approx(mmc_mean_wait(30.0, 10.0, 4) + 0.1)
    # Far past capacity the timeout still bounds everything: c mu get served.
    over = mmc_timeout_figures(5000.0, 0.01, 500, 600.0)
    assert over["throughput_per_s"] == pytest.approx(5.0)
    assert over["mean_response_s"] == pytest.approx(600.0)


# The queue engine against its own theory --------------------------------------


def long_run(engine, warmup=100.0, length=2000.0):
    engine.advance(warmup)
    engine.reset_stats()
    engine.advance(length)
    return engine.metrics()


def test_polling_counts_whole_intervals_of_the_time_to_done():
    # With workers to spare nobody waits: T is exponential with mean 10 s, and a
    # page polling every second makes sum over k >= 0 of P(T > k) = 1 / (1 - e^-0.1)
    # polls, the last one on average 1 x polls - 10 s after the job ended.
    figures = mmc_poll_figures(2.0, 0.1, 200, 1.0)
    polls = 1 / (1 - math.exp(-0.1))
    assert figures["polls_per_job"] == pytest.approx(polls)
    assert figures["status_requests_per_s"] == pytest.approx(2 * polls)
    assert figures["result_delay_s"] == pytest.approx(polls - 10)
    # A job can end before its page even gets the answer: still one poll.
    assert mmc_poll_figures(1.0, 1e4, 10, 1.0, head_start=0.5)["polls_per_job"] == (
        pytest.approx(1.0)
    )
    # Waiting adds polls; the formula is continuous where the wait's rate meets
    # the job's (c mu - lambda = mu: S + W is Erlang-2).
    equal = mmc_poll_figures(1.0, 1.0, 2, 0.5)
    near = mmc_poll_figures(1.0, 1.0 + 1e-7, 2, 0.5)
    assert equal["polls_per_job"] == pytest.approx(near["polls_per_job"], rel=1e-6)
    assert equal["polls_per_job"] > mmc_poll_figures(1.0, 1.0, 50, 0.5)["polls_per_job"]


@pytest.mark.parametrize(
    ("params", "rel"),
    [
        # Async, no limit: Erlang C at load 0.75.
        ({"arrival_rate": 30.0}, 0.06),
        # The same, the pages polling for their results every 0.2 s.
        ({"arrival_rate": 30.0, "notify": "poll", "poll_interval_s": 0.2}, 0.06),
        # Async with 10 places at load 1.25: M/M/c/K.
        ({"arrival_rate": 50.0, "queue_capacity": 10}, 0.04),
        # Sync at load 1.125 with a 1 s timeout: M/M/c+D.
        ({"mode": "sync", "arrival_rate": 90.0, "request_timeout_s": 1.0}, 0.03),
        # One worker, fixed durations: Pollaczek-Khinchine (M/D/1).
        (
            {"arrival_rate": 7.0, "workers": 1, "service_dist": "deterministic"},
            0.08,
        ),
    ],
)
def test_the_queue_engine_agrees_with_its_theory(params, rel):
    engine = QueueEngine(params, seed=3)
    figures = long_run(engine)
    theory, gaps = engine.theory()
    assert gaps == {}
    assert set(theory) == set(QueueEngine.theory_models)
    for name, predicted in theory.items():
        # Relative tolerances of a few standard errors of 2,000 s runs.
        assert figures[name] == pytest.approx(predicted, rel=rel), name


def test_the_queue_engine_says_why_there_is_no_steady_state():
    engine = QueueEngine({"arrival_rate": 50.0}, seed=1)
    theory, gaps = engine.theory()
    assert gaps["mean_wait_s"] == (
        "load is 1.25, at or above 1: the queue grows without limit, so no "
        "steady state exists"
    )
    assert "mean_wait_s" not in theory
    # The answer to the user is still the enqueue time.
    assert theory["mean_response_s"] == pytest.approx(0.005)
    # A queue limit bounds it: a line again.
    engine.set_param("queue_capacity", 10)
    theory, gaps = engine.theory()
    assert gaps == {} and theory["mean_wait_s"] > 0


def test_killing_a_worker_changes_the_prediction():
    engine = QueueEngine({"arrival_rate": 30.0}, seed=1)
    before = engine.theory()[0]["mean_wait_s"]
    engine.advance(1)
    engine.apply("kill_worker")
    # Three workers at load 1: none is left.
    assert "mean_wait_s" in engine.theory()[1]
    engine.apply("add_worker", {"count": 2})
    after = engine.theory()[0]["mean_wait_s"]
    assert after < before


def test_theory_and_picture_leave_the_world_untouched():
    for engine in (QueueEngine({}, seed=2), ScalingEngine({}, seed=2)):
        engine.advance(5)
        blob = pickle.dumps(engine.__dict__)
        engine.compute_theory()
        engine.picture()
        assert pickle.dumps(engine.__dict__) == blob


def test_the_queue_picture_tells_the_mode_and_the_two_lines_apart():
    engine = QueueEngine({"arrival_rate": 60.0, "mode": "sync"}, seed=4)
    engine.advance(10)
    picture = engine.picture()
    assert picture["mode"] == "sync"
    assert picture["requests_waiting"] == engine.metrics()["queue_length"]
    assert picture["jobs_waiting"] == 0


# The scaling engine against its own theory ------------------------------------


def scaling_run(params, length=400.0):
    engine = ScalingEngine(
        {"growth_rps_per_min": 0.0, "auto_scale": False, **params}, seed=5
    )
    engine.advance(20)
    arrived0, served0, dropped0 = engine._tally()
    busy0, cap0 = engine.busy_area, engine.cap_area
    engine.advance(length)
    arrived, served, dropped = engine._tally()
    measured = {
        "dropped_rps_recent": (dropped - dropped0) / length,
        "served_rps_recent": (served - served0) / length,
        "utilization_recent": (engine.busy_area - busy0) / (engine.cap_area - cap0),
    }
    return engine, measured


def test_one_server_agrees_with_mmck():
    # One small server (4 workers, 8 places) offered 100 requests/s: load 1.
    engine, measured = scaling_run({"arrival_rate": 100.0})
    theory, gaps = engine.theory()
    assert gaps == {}
    assert measured["dropped_rps_recent"] == pytest.approx(
        theory["dropped_rps_recent"], rel=0.1
    )
    assert measured["served_rps_recent"] == pytest.approx(
        theory["served_rps_recent"], rel=0.01
    )
    assert measured["utilization_recent"] == pytest.approx(
        theory["utilization_recent"], abs=0.01
    )


def test_round_robin_drops_fewer_than_the_poisson_split_predicts():
    # Three small servers at load 0.93: each sees every third arrival, a more
    # regular stream than Poisson, so fewer drops (and the model an upper bound).
    engine, measured = scaling_run(
        {"strategy": "horizontal", "servers": 3, "arrival_rate": 280.0}
    )
    theory = engine.theory()[0]
    assert measured["dropped_rps_recent"] < theory["dropped_rps_recent"]
    assert measured["dropped_rps_recent"] > 0.4 * theory["dropped_rps_recent"]
    assert measured["served_rps_recent"] == pytest.approx(
        theory["served_rps_recent"], rel=0.05
    )


def test_a_killed_server_changes_the_prediction_and_none_serving_drops_all():
    engine = ScalingEngine(
        {"strategy": "horizontal", "servers": 3, "growth_rps_per_min": 0.0}, seed=1
    )
    engine.advance(2)
    three = engine.theory()[0]["dropped_rps_recent"]
    engine.apply("kill_server", {"server": 1})
    assert engine.theory()[0]["dropped_rps_recent"] > three
    vertical = ScalingEngine({"growth_rps_per_min": 0.0}, seed=1)
    vertical.advance(2)
    vertical.apply("kill_server", {"server": 0})
    theory, gaps = vertical.theory()
    assert theory["dropped_rps_recent"] == pytest.approx(vertical.rate)
    assert gaps["utilization_recent"] == "no server is serving now, so none is busy"


def test_the_scaling_picture_lists_each_shown_server():
    engine = ScalingEngine(
        {"strategy": "horizontal", "servers": 4, "arrival_rate": 300.0}, seed=2
    )
    engine.advance(5)
    picture = engine.picture()
    metrics = engine.metrics()
    assert len(picture["busy"]) == len(metrics["server_names"]) == 4
    assert picture["workers"] == [4, 4, 4, 4]
    assert sum(picture["busy"]) + sum(picture["queued"]) == metrics["in_flight"]


# The command line --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["queue", "scaling"])
def test_simulate_json_prints_the_theory_beside_the_metrics(kind):
    out = io.StringIO()
    call_command("simulate", kind, "--duration", "10", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["theory"], data
    # Named as the engine's metrics (the windowed ones are not in the summary).
    declared = {m.name for m in REGISTRY[kind].metric_specs}
    assert set(data["theory"]) <= declared


def test_simulate_json_gives_the_reason_where_there_is_no_theory():
    out = io.StringIO()
    call_command(
        "simulate",
        "queue",
        "--set",
        "arrival_rate=50",
        "--duration",
        "10",
        "--json",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    assert "no steady state" in data["theory_gaps"]["mean_wait_s"]


def test_the_model_named_follows_the_settings():
    assert QueueEngine({}).theory_names()["mean_wait_s"] == "Erlang C (M/M/c)"
    assert QueueEngine({"queue_capacity": 5}).theory_names()["mean_wait_s"] == (
        "M/M/c/K (5 places in the queue)"
    )
    assert (
        QueueEngine({"mode": "sync"})
        .theory_names()["mean_wait_s"]
        .startswith("M/M/c+D")
    )
    one = ScalingEngine({}).theory_names()["dropped_rps_recent"]
    three = ScalingEngine({"strategy": "horizontal", "servers": 3}).theory_names()
    assert one == "M/M/c/K (one server: exact)"
    assert three["dropped_rps_recent"].startswith("M/M/c/K per server")
