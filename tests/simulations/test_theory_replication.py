"""Theory beside the replication and failover engines: closed forms, seeded runs."""

from __future__ import annotations

import io
import json
import math
import random

import pytest
from django.core.management import call_command

from simulations.engines import get_engine
from simulations.engines.runner import make_step, run_headless
from simulations.theory.availability import (
    detection_bounds,
    dropped_per_death,
    expected_dropped,
    failover_outage_bounds,
    mean_failover_outage,
    outage_per_death,
)
from simulations.theory.replication import (
    backlog_growth_rate,
    master_master_mean_lag,
    quorum_miss_chance,
    quorums_overlap,
    read_back_miss_chance,
    replica_lag_quantile,
    replica_mean_lag,
    smallest_fresh_read_quorum,
)

Replication = get_engine("replication")
Failover = get_engine("failover")


# Closed forms against published figures -------------------------------------


def test_the_replica_lag_is_the_mm1_sojourn_of_kleinrock_plus_the_delay():
    # Kleinrock, Queueing Systems Vol. 1 (1975), section 3.2: in M/M/1 the time
    # in system is exponential with rate mu - lambda, so T = 1 / (mu - lambda);
    # at rho = 0.5 (lambda 1, mu 2) T = 1 time unit, at rho = 0.9 (lambda 9,
    # mu 10) T = 1, ten service times (his "1 / (1 - rho)" curve).
    assert replica_mean_lag(1.0, 2.0, 0.0) == pytest.approx(1.0)
    assert replica_mean_lag(9.0, 10.0, 0.0) == pytest.approx(1.0)
    assert replica_mean_lag(9.0, 10.0, 0.0) * 10.0 == pytest.approx(10.0)
    # the engine's defaults: 100 writes/s, 150 applies/s, 5 ms away: 25 ms
    assert replica_mean_lag(100.0, 150.0, 0.005) == pytest.approx(0.025)


def test_the_lag_quantile_is_the_exponential_one():
    # An exponential of mean 1 has its median at ln 2 and its 99th percentile at
    # ln 100 = 4.605 (any table of the exponential distribution).
    assert replica_lag_quantile(0.5, 1.0, 2.0, 0.0) == pytest.approx(math.log(2))
    assert replica_lag_quantile(0.99, 1.0, 2.0, 0.0) == pytest.approx(4.60517, 1e-5)
    assert replica_lag_quantile(0.99, 1.0, 2.0, 0.25) == pytest.approx(4.85517, 1e-5)


def test_past_the_apply_rate_there_is_no_mean_and_the_backlog_grows():
    assert replica_mean_lag(150.0, 150.0, 0.0) == math.inf
    assert backlog_growth_rate(200.0, 150.0) == pytest.approx(1 / 3)
    assert backlog_growth_rate(100.0, 150.0) == 0.0


def test_two_masters_add_the_mean_lags_along_one_and_two_hops():
    # Burke (1956): the output of an M/M/1 queue is Poisson again, so each queue
    # on the way is M/M/1 and the means add. 100 writes/s split evenly, apply 150,
    # 5 ms: each master applies 50/s (10 ms queue + 5 ms), each replica all 100/s
    # (20 ms + 5 ms), and half of its writes came through the first master first.
    on_master = 0.005 + 1 / 100
    direct = 0.005 + 1 / 50
    via = on_master + direct
    expected = (100 * on_master + 2 * (50 * direct + 50 * via)) / 300
    got = master_master_mean_lag(100.0, 150.0, 0.005, 2, 0.5)
    assert got == pytest.approx(expected)
    assert master_master_mean_lag(100.0, 150.0, 0.005, 0, 0.5) == pytest.approx(
        on_master
    )
    assert master_master_mean_lag(160.0, 150.0, 0.005, 1, 0.5) == math.inf


def test_quorums_overlap_exactly_when_r_plus_w_exceeds_n():
    # Dynamo (DeCandia et al., SOSP 2007) runs N = 3, R = 2, W = 2: R + W > N.
    # Cassandra's QUORUM is floor(N / 2) + 1 for both: 2 of 3, 3 of 5.
    assert quorums_overlap(3, 2, 2)
    assert quorums_overlap(5, 3, 3)
    assert not quorums_overlap(3, 1, 2)  # W = 1 is asynchronous: R must be N
    assert quorums_overlap(3, 1, 3)
    assert not quorums_overlap(5, 2, 3)
    assert smallest_fresh_read_quorum(3, 2) == 2
    assert smallest_fresh_read_quorum(5, 3) == 3
    assert smallest_fresh_read_quorum(5, 1) == 5
    assert smallest_fresh_read_quorum(3, 3) == 1  # write all, read one
    assert smallest_fresh_read_quorum(3, 7) == 1  # W above N is all of them


def test_the_quorum_miss_chance_is_the_hypergeometric_zero():
    # C(N - W, R) / C(N, R): one copy of three asked at random misses a write on
    # one copy 2 times in 3; two asked of five miss three holders 1 time in 10.
    assert quorum_miss_chance(3, 1, 1) == pytest.approx(2 / 3)
    assert quorum_miss_chance(3, 1, 2) == pytest.approx(1 / 3)
    assert quorum_miss_chance(5, 3, 2) == pytest.approx(1 / 10)
    assert quorum_miss_chance(3, 2, 2) == 0.0


@pytest.mark.parametrize(
    ("write_quorum", "read_quorum", "paused"),
    [(2, 1, (2,)), (1, 2, (1, 2)), (1, 1, (1, 2)), (2, 2, (2,))],
)
def test_the_engines_stale_share_is_the_quorum_miss_chance(
    write_quorum, read_quorum, paused
):
    # One row, written 100 times a second; the paused replicas never get its
    # latest version, and a write is acknowledged once its W copies have it, so
    # a read is stale exactly when its R copies are all paused ones.
    steps = [
        make_step(Replication, 1.0, "pause_replica", {"replica": r, "seconds": 600})
        for r in paused
    ]
    summary = run_headless(
        Replication,
        {
            "rows": 1,
            "read_rate": 2000.0,
            "replication": "quorum",
            "read_from": "quorum",
            "write_quorum": write_quorum,
            "read_quorum": read_quorum,
        },
        seed=6,
        duration=32,
        warmup=2,
        steps=steps,
    )
    have = 3 - len(paused)
    expected = quorum_miss_chance(3, have, read_quorum)
    # 60,000 reads: the share's standard deviation is under 0.2 %, and 1 % is five
    assert summary.metrics["stale_read_ratio"] == pytest.approx(expected, abs=0.01)


def test_a_read_back_misses_its_write_as_often_as_the_lag_outlasts_it():
    # P(delay + Exp(mu - lambda) > t) = exp(-(mu - lambda)(t - delay)): 100 a
    # second of spare apply rate and 30 ms past the delay give e^-3 = 4.98 %.
    assert read_back_miss_chance(100, 200, 0.02, 0.05) == pytest.approx(0.049787, 1e-5)
    assert read_back_miss_chance(100, 200, 0.02, 0.01) == 1.0
    assert read_back_miss_chance(200, 200, 0.0, 5.0) == 1.0


@pytest.mark.parametrize(
    ("writes", "apply", "delay_ms", "after_ms"),
    [(100, 200, 20, 50), (150, 250, 30, 50), (100, 300, 10, 30)],
)
def test_the_engines_read_your_writes_misses_follow_the_lag(
    writes, apply, delay_ms, after_ms
):
    # Rows nobody else writes in between (100,000 of them, uniform), so a
    # read-back misses exactly when its replica has not applied the write yet.
    summary = run_headless(
        Replication,
        {
            "write_rate": writes,
            "apply_rate": apply,
            "network_delay_ms": delay_ms,
            "read_back_ms": after_ms,
            "read_rate": 50.0,
            "rows": 100_000,
            "zipf_s": 0.0,
        },
        seed=1,
        duration=1220,
        warmup=20,
    )
    m = summary.metrics
    expected = read_back_miss_chance(writes, apply, delay_ms / 1000, after_ms / 1000)
    # 300 to 6,000 misses in 1,200 s, correlated through busy periods as the lags
    # are: six seeds fell within 5.2 % of the theory, and 10 % is about twice that
    assert m["ryw_violations"] / m["writes"] == pytest.approx(expected, rel=0.1)


def test_failover_detection_matches_vrrps_master_down_interval():
    # RFC 5798 (VRRP v3) section 6.1: a backup declares the master down after
    # Master_Down_Interval = 3 x Master_Adver_Interval (+ a skew), 3 s with the
    # default 1 s adverts: at most three intervals of silence, and more than two
    # since the last advert heard.
    assert detection_bounds(1.0, 3) == (2.0, 3.0)
    assert failover_outage_bounds(1.0, 3, 2.0) == (4.0, 5.0)
    # a death at a uniform phase of the beat: the middle of the bounds
    assert mean_failover_outage(1.0, 3, 2.0) == pytest.approx(4.5)


def test_the_requests_lost_in_an_outage_are_poisson():
    # A Poisson count over a window of fixed length t has mean and variance
    # lambda x t: 300 requests/s over 4.5 s lose 1,350, give or take 36.7.
    mean, sd = expected_dropped(300.0, 4.5)
    assert mean == pytest.approx(1350.0)
    assert sd == pytest.approx(36.742, rel=1e-4)
    # plus the connections a death cuts: Little's law, 300/s x 50 ms in flight
    assert dropped_per_death(300.0, 4.5, 0.05) == pytest.approx(1365.0)
    assert outage_per_death(False, 1.0, 3, 2.0, 300.0) == 300.0
    assert outage_per_death(True, 1.0, 3, 2.0, 300.0) == pytest.approx(4.5)


# The engines' predictions against seeded runs ------------------------------


@pytest.mark.parametrize(
    ("params", "tolerance"),
    # 400 measured seconds of 100 writes/s give 80,000 applies; the lag's
    # standard deviation is about its mean, but successive lags are correlated
    # (a busy period), which widens the error to about 1 %: 5 % is four of those.
    [
        ({}, 0.05),
        ({"write_rate": 120.0, "network_delay_ms": 20.0}, 0.06),
        ({"topology": "master_master", "replicas": 2}, 0.05),
    ],
)
def test_the_replication_engines_mean_lag_agrees_with_its_theory(params, tolerance):
    params = {"read_rate": 50.0, **params}
    summary = run_headless(Replication, params, seed=3, duration=420, warmup=20)
    predicted = summary.theory["mean_lag_ms"]
    assert summary.metrics["mean_lag_ms"] == pytest.approx(predicted, rel=tolerance)


def test_the_replication_p99_agrees_with_the_exponential_sojourn():
    summary = run_headless(
        Replication, {"read_rate": 50.0}, seed=5, duration=420, warmup=20
    )
    # the histogram's bins are 2.3 % wide; 8 % covers them and the sampling
    assert summary.metrics["p99_lag_ms"] == pytest.approx(
        summary.theory["p99_lag_ms"], rel=0.08
    )


def test_a_saturated_replica_gets_a_reason_instead_of_a_line():
    engine = Replication({"write_rate": 200.0, "apply_rate": 150.0})
    values, gaps = engine.theory()
    assert "mean_lag_ms" not in values
    assert "no steady state" in gaps["mean_lag_ms"]
    assert "50 writes" in gaps["mean_lag_ms"]


def test_the_replication_theory_follows_the_live_replicas_and_masters():
    engine = Replication({"topology": "master_master", "replicas": 1}, seed=2)
    two = engine.compute_theory()["mean_lag_ms"]
    engine.advance(2.0)
    engine.apply("kill_master", {"master": 2})
    one = engine.theory()[0]["mean_lag_ms"]
    assert one == pytest.approx(1000 * replica_mean_lag(100.0, 150.0, 0.005))
    assert one != pytest.approx(two)
    engine.apply("kill_replica", {"replica": 1})
    assert "no replica" in engine.theory()[1]["mean_lag_ms"]


def failover_steps(kills: int, gap_s: float, seed: int):
    """Kill the active at random moments (a random phase of the beat), revive later."""
    rng = random.Random(seed)
    steps = []
    for k in range(kills):
        at = round(10.0 + k * gap_s + rng.uniform(0.0, 5.0), 2)
        steps.append(make_step(Failover, at, "kill_active", {}))
        steps.append(make_step(Failover, at + 12.0, "revive", {}))
    return steps


def test_the_failover_engines_outages_agree_with_the_heartbeat_theory():
    kills = 40
    summary = run_headless(
        Failover,
        {},
        seed=4,
        duration=10.0 + kills * 20.0 + 5.0,
        warmup=5.0,
        steps=failover_steps(kills, 20.0, seed=9),
    )
    m, theory = summary.metrics, summary.theory
    assert m["failovers"] == kills
    # A detection is uniform over one 1 s interval (sd 0.29 s): the mean of 40
    # has a standard error of 0.046 s, and 0.2 s is over four of them.
    assert m["mean_detection_s"] == pytest.approx(theory["mean_detection_s"], abs=0.2)
    assert m["mean_failover_outage_s"] == pytest.approx(
        theory["mean_failover_outage_s"], abs=0.2
    )
    cost = Failover({}).picture()["per_death"]
    assert (cost["outage_lo_s"], cost["outage_hi_s"]) == (4.0, 5.0)
    # Per death: Poisson(1,350) plus 300/s x the outage's 0.29 s spread, about
    # 94 requests; the mean of 40 has a standard error of 15, and 5 % is 68.
    lost = (m["dropped_no_balancer"] + m["dropped_cut"]) / kills
    assert lost == pytest.approx(cost["dropped"], rel=0.05)


def test_without_a_standby_the_outage_is_the_repair_time():
    summary = run_headless(
        Failover,
        {"standby": False, "repair_s": 30.0},
        seed=2,
        duration=60.0,
        warmup=5.0,
        steps=[make_step(Failover, 10.0, "kill_active", {})],
    )
    cost = Failover({"standby": False, "repair_s": 30.0}).picture()["per_death"]
    assert cost["outage_s"] == 30.0
    assert summary.metrics["outage_s"] == pytest.approx(30.0, abs=1e-6)
    # 300 requests/s for 30 s, and the 15 in flight that the death cuts
    assert cost["dropped"] == pytest.approx(9015.0)
    lost = summary.metrics["dropped_no_balancer"] + summary.metrics["dropped_cut"]
    assert lost == pytest.approx(cost["dropped"], rel=0.05)
    gap = summary.theory_gaps["mean_failover_outage_s"]
    assert "no standby" in gap and "30 s" in gap and "9,015 requests" in gap
    assert "mean_failover_outage_s" not in summary.theory


def test_theory_and_picture_leave_the_world_untouched():
    for engine in (
        Replication({"topology": "master_master"}, seed=1),
        Failover({}, seed=1),
    ):
        engine.advance(3.0)
        before = engine.snapshot()
        engine.compute_theory()
        json.dumps(engine.picture())
        assert engine.snapshot() == before


def test_the_replication_picture_shows_a_paused_and_a_dead_replica():
    engine = Replication({"replicas": 3}, seed=1)
    engine.advance(1.0)
    engine.apply("pause_replica", {"replica": 2, "seconds": 5.0})
    engine.apply("kill_replica", {"replica": 3})
    engine.advance(1.0)
    servers = {s[0]: s for s in engine.picture()["servers"]}
    assert servers["r2"][4] == "paused"
    assert servers["r2"][3] > 0  # it keeps receiving: its backlog builds
    assert servers["r3"][4] == "down"
    assert servers["r1"][2] == "m1"


def test_the_failover_picture_counts_the_missed_beats_of_a_partition():
    engine = Failover({}, seed=1)
    engine.advance(5.0)
    assert engine.picture()["missed"] == 0
    engine.apply("partition")
    engine.advance(2.5)
    shown = engine.picture()
    assert shown["partitioned"] is True
    assert shown["missed"] == 2
    assert shown["kill"] == "lb-a"


@pytest.mark.parametrize("kind", ["replication", "failover"])
def test_simulate_json_prints_the_theory_beside_the_metrics(kind):
    out = io.StringIO()
    call_command("simulate", kind, "--duration", "30", "--json", stdout=out)
    data = json.loads(out.getvalue())
    engine = get_engine(kind)
    assert data["theory"]
    assert set(data["theory"]) <= set(engine.theory_models)
    # every theory figure is one of the engine's metrics, as the charts expect
    assert set(engine.theory_models) <= {m.name for m in engine.metric_specs}
    assert "metrics" in data
