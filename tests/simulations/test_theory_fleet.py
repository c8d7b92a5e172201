"""Theory beside the fleet engines: deploy, provisioning and sessions.

The formulas are checked against published figures, and each engine's
``compute_theory`` against long seeded runs of the engine itself.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from simulations.engines.deploy import DeployEngine
from simulations.engines.provisioning import ProvisioningEngine
from simulations.engines.sessions import SessionsEngine
from simulations.theory.fleet import (
    central_mean_latency_ms,
    deploy_min_capacity,
    deploy_peak_servers,
    forced_logout_rate,
    instance_utilization,
    local_share_lost,
    spike_time_to_capacity,
    user_request_rate,
    visit_requests,
)

# Published figures -----------------------------------------------------------


def test_a_rolling_batch_leaves_the_capacity_the_deploy_guides_state():
    # AWS CodeDeploy's predefined configurations (User Guide, "Working with
    # deployment configurations"): HalfAtATime keeps at least half of the
    # instances healthy, OneAtATime all but one, AllAtOnce may take every one.
    assert deploy_min_capacity("rolling", 10, 5) == 5
    assert deploy_min_capacity("rolling", 10, 1) == 9
    assert deploy_min_capacity("all_at_once", 10, 1) == 0
    # Blue/green (Humble & Farley, Continuous Delivery, ch. 10) switches to a
    # second full environment: no capacity lost, twice the servers running.
    assert deploy_min_capacity("blue_green", 10, 5) == 10
    assert deploy_peak_servers("blue_green", 10) == 20
    assert deploy_min_capacity("atomic", 10, 5) == 10
    assert deploy_peak_servers("rolling", 10) == 10


def test_one_of_n_servers_holds_one_nth_of_the_local_sessions():
    assert local_share_lost(4) == pytest.approx(0.25)
    assert local_share_lost(1) == 1.0
    with pytest.raises(ValueError):
        local_share_lost(0)


def test_instance_utilisation_is_erlang_b_without_a_queue():
    # Erlang B tables (Cooper, Introduction to Queueing Theory, table I): 10
    # circuits offered 5 erlangs block 1.838 %; what is carried is 5 x (1 - B)
    # erlangs on 10 workers.
    assert instance_utilization(5.0, 1, 10, 1.0, 0) == pytest.approx(
        5 * (1 - 0.01838) / 10, abs=1e-5
    )
    # Split evenly: 4 instances of 10 workers offered 20 each is the same.
    assert instance_utilization(20.0, 4, 10, 1.0, 0) == pytest.approx(
        instance_utilization(5.0, 1, 10, 1.0, 0)
    )
    # M/M/1/K (Kleinrock, Queueing Systems I, section 3.6): rho = 0.5, K = 2
    # blocks (1 - rho) rho^2 / (1 - rho^3) = 1/7, so 0.5 x 6/7 is carried.
    assert instance_utilization(0.5, 1, 1, 1.0, 1) == pytest.approx(0.5 * 6 / 7)


@pytest.mark.parametrize(
    ("spike_rate", "expected"),
    [
        # 600 requests/s on instances of 100: 6 needed; from 2, two scale-outs of
        # 2 then 2 more. Lower: a cooldown and the quickest boot (60 + 32); upper:
        # two checks, a cooldown and a check, and the slowest boot (20 + 70 + 48).
        (600, (92.0, 138.0)),
        # The 2 in service already carry 150 requests/s.
        (150, (0.0, 0.0)),
        (
            3000,
            "the spike needs 30 instances but the group stops at 20: capacity "
            "never catches up",
        ),
    ],
)
def test_the_time_to_capacity_bounds_count_checks_cooldowns_and_boots(
    spike_rate, expected
):
    bounds = spike_time_to_capacity(
        spike_rate=spike_rate,
        instance_rps=100,
        in_service=2,
        desired=2,
        step=2,
        max_instances=20,
        check_s=10,
        cooldown_s=60,
        boot_min_s=32,
        boot_max_s=48,
    )
    assert bounds == expected


def test_a_visit_counts_its_logins_by_renewal_reward():
    # No misses: a login, the items and a checkout.
    assert visit_requests(5.0, 1.0) == 7.0
    # Each of the 6 session requests takes 1/hit = 4 tries and 3 logins again.
    assert visit_requests(5.0, 0.25) == pytest.approx(1 + 6 * 4 + 6 * 3)
    # Renewal-reward (Ross, Introduction to Probability Models, section 7.4):
    # 7 requests per cycle of 30 s offline and 6 think times of 2 s.
    assert user_request_rate(300, 2.0, 30.0, 5.0, 1.0) == pytest.approx(300 * 7 / 42)
    assert forced_logout_rate(300, 2.0, 30.0, 5.0, 1.0) == 0.0
    # A central store: a write at login, a read and a write for the 6 others.
    assert central_mean_latency_ms(20.0, 5.0, 5.0) == pytest.approx(20 + 5 * 13 / 7)


# The engines against their own theory ---------------------------------------


@pytest.mark.parametrize(
    ("strategy", "lowest", "most"),
    [("rolling", 4, 6), ("all_at_once", 0, 6), ("blue_green", 6, 12), ("atomic", 6, 6)],
)
def test_a_deploy_of_a_good_release_dips_to_the_capacity_theory_predicts(
    strategy, lowest, most
):
    engine = DeployEngine(
        {"servers": 6, "batch_size": 2, "strategy": strategy, "install_s": 5},
        seed=3,
    )
    engine.advance(5)
    theory, gaps = engine.theory()
    assert gaps == {}
    assert theory == {"min_capacity": lowest, "peak_servers": most}
    engine.apply("deploy")
    engine.advance(120)
    m = engine.metrics()
    assert m["deploys"] == 1 and m["phase"] == "idle"
    # Exact: the strategy decides how many servers leave service together.
    assert m["min_capacity"] == theory["min_capacity"]
    assert m["peak_servers"] == theory["peak_servers"]


def test_a_crashed_server_fails_requests_until_its_health_check_and_a_restart():
    engine = DeployEngine({"servers": 4, "batch_size": 1}, seed=5)
    engine.advance(5)
    events = engine.apply("kill_server", {"fleet": "blue", "number": 2})
    assert events == [{"type": "server.stopped", "t": 5.0, "server": "blue2"}]
    assert engine.picture()["states"][1] == "crashed"
    engine.advance(5)
    m = engine.metrics()
    assert m["capacity"] == 3 and m["error_requests"] > 0
    engine.apply("restart_server", {"fleet": "blue", "number": 2})
    engine.advance(5)
    assert engine.metrics()["capacity"] == 4
    assert engine.picture()["states"] == ["serving"] * 4


def test_the_cpu_of_a_steady_group_agrees_with_its_mmck_utilisation():
    engine = ProvisioningEngine({"commit_rate_per_hour": 0}, seed=11)
    engine.advance(50)
    samples = []
    for _ in range(100):  # one CPU figure per check of 10 s
        engine.advance(10)
        samples.append(engine.metrics()["cpu"])
    theory, _ = engine.theory()
    assert engine.metrics()["instances"] == 2
    # 120 requests/s on 2 x 4 workers of 25/s: 0.6, less a sliver dropped. The
    # mean of 100 checks of ~1,200 requests each is within 0.01 (sd ~0.003).
    assert theory["cpu"] == pytest.approx(0.6, abs=0.005)
    assert sum(samples) / len(samples) == pytest.approx(theory["cpu"], abs=0.01)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_spike_is_carried_within_the_time_theory_bounds(seed):
    engine = ProvisioningEngine({"commit_rate_per_hour": 0}, seed=seed)
    engine.advance(100 + seed * 3.7)  # the spike at another phase of the checks
    assert engine.theory()[1]["time_to_capacity_s"] == (
        "no spike yet: press Traffic spike"
    )
    engine.apply("spike", {"factor": 5, "duration_s": 600})
    engine.advance(300)
    m = engine.metrics()
    theory, gaps = engine.theory()
    assert m["capacity_met"] == 1
    # 6 instances needed from 2 in steps of 2: between 92 s and 138 s.
    assert theory["time_to_capacity_s"] == 138.0
    assert 92.0 <= m["time_to_capacity_s"] <= theory["time_to_capacity_s"]


def test_a_spike_beyond_the_largest_group_has_no_time_to_capacity():
    engine = ProvisioningEngine({"max_instances": 4}, seed=1)
    engine.advance(20)
    engine.apply("spike", {"factor": 5, "duration_s": 600})
    _, gaps = engine.theory()
    assert gaps["time_to_capacity_s"] == (
        "the spike needs 6 instances but the group stops at 4: capacity never "
        "catches up"
    )
    engine.advance(400)
    assert engine.metrics()["capacity_met"] == 0


@pytest.mark.parametrize("store", ["local", "sticky", "central_cache", "central_db"])
def test_a_long_sessions_run_agrees_with_renewal_reward_and_round_robin(store):
    engine = SessionsEngine({"store": store}, seed=7)
    engine.advance(300)
    engine.reset_stats()
    engine.advance(3000)
    m = engine.metrics()
    theory, gaps = engine.theory()
    assert gaps == {}
    # About 150,000 (local: 340,000) requests: ratios within 0.01, rates
    # within 3 % (the think and offline times are exponential).
    assert m["mean_latency_ms"] == pytest.approx(theory["mean_latency_ms"], rel=0.01)
    assert m["move_ratio"] == pytest.approx(theory["move_ratio"], abs=0.01)
    assert m["forced_logout_ratio"] == pytest.approx(
        theory["forced_logout_ratio"], abs=0.01
    )
    assert m["requests"] / 3000 == pytest.approx(
        theory["requests_per_s_recent"], rel=0.03
    )
    assert m["forced_logouts"] / 3000 == pytest.approx(
        theory["forced_logouts_per_s_recent"], rel=0.03, abs=0.01
    )


def test_killing_one_of_four_servers_loses_a_quarter_of_the_local_sessions():
    shares = []
    for seed in range(5):
        engine = SessionsEngine({"servers": 4}, seed=seed)
        engine.advance(200)
        engine.apply("kill", {"server": 2})
        shares.append(engine.picture()["last_loss"]["share"])
        # The theory follows the servers up: round robin over 3 now.
        assert engine.theory()[0]["move_ratio"] == pytest.approx(2 / 3)
    assert sum(shares) / len(shares) == pytest.approx(local_share_lost(4), abs=0.03)


def test_with_every_server_dead_the_sessions_theory_says_why_there_is_none():
    engine = SessionsEngine({"servers": 2}, seed=1)
    engine.advance(10)
    engine.apply("kill", {"server": 1})
    engine.apply("kill", {"server": 2})
    theory, gaps = engine.theory()
    assert theory == {}
    assert gaps["mean_latency_ms"] == "no server is up: every request fails"
    assert set(gaps) == set(SessionsEngine.theory_models)


# The command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "metric"),
    [
        ("deploy", "min_capacity"),
        ("provisioning", "cpu"),
        ("sessions", "mean_latency_ms"),
    ],
)
def test_simulate_json_prints_the_theory_beside_the_metrics(kind, metric):
    out = io.StringIO()
    call_command("simulate", kind, "--duration", "30", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert metric in data["theory"]
    assert isinstance(data["theory"][metric], float)
    assert metric in data["metrics"]
