"""The balancer engine: routing strategies over app servers with bounded queues."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.balancer import STRATEGIES
from simulations.engines.base import CommandError
from simulations.engines.runner import make_step
from simulations.theory.queueing import (
    mm1_mean_time,
    mm1k_blocking,
    supermarket_mean_time,
)

from .golden import assert_golden, trace

Balancer = get_engine("balancer")


def measure(params, *, seed=1, duration=100.0, warmup=10.0):
    """Return every figure measured after ``warmup`` seconds, up to ``duration``."""
    engine = Balancer({"api_share": 0.0, "queue_limit": 10_000} | params, seed=seed)
    engine.advance(warmup)
    engine.reset_stats()
    engine.advance(duration - warmup)
    return engine.metrics()


def test_golden_trace_with_failures_growth_and_a_change_of_strategy():
    steps = [
        make_step(Balancer, 2, "kill", {"server": 2}),
        make_step(Balancer, 3.5, "set_strategy", {"strategy": "least_connections"}),
        make_step(Balancer, 4, "revive", {"server": 2}),
        make_step(Balancer, 5, "add_server", {"pool": "api", "speed": 2}),
        make_step(Balancer, 6, "set_arrival_rate", {"rate": 60}),
        make_step(Balancer, 7, "remove_server", {"server": 1}),
        make_step(Balancer, 8, "set_strategy", {"strategy": "dns_round_robin"}),
    ]
    frames = trace(
        Balancer,
        {
            "servers": 3,
            "arrival_rate": 25,
            "service_rate": 10,
            "queue_limit": 8,
            "clients": 20,
            "dns_ttl_s": 2,
        },
        seed=7,
        steps=steps,
        frames=20,
        dt=0.5,
    )
    assert_golden("balancer", frames)


def test_random_routing_matches_independent_mm1_queues():
    # Random routing splits the Poisson stream into `servers` independent Poisson
    # streams of rate lambda/servers: each server is an M/M/1 queue, whose time in
    # system is exponential with rate mu - lambda/servers. So the mean is
    # 1/(mu - lambda/servers) and the p99 is ln(100) times that.
    # 800 s at 700 req/s is 560k requests after a 20 s warm-up (the M/M/1
    # relaxation time at rho = 0.7 is about 1/(mu (1 - sqrt(rho))^2) = 0.4 s).
    # Eight seeds of 200 s gave a spread (standard deviation) of 1.5 % for the
    # mean, so this run's is about 0.75 %; 3 % is four of those. The p99 is
    # noisier (rarer events) and read from 2.3 % wide bins: 5 %.
    servers, rho, mu = 10, 0.7, 100.0
    figures = measure(
        {
            "strategy": "random",
            "servers": servers,
            "arrival_rate": rho * mu * servers,
            "service_rate": mu,
        },
        duration=820,
        warmup=20,
    )
    mean = mm1_mean_time(rho * mu, mu)
    assert figures["mean_latency_s"] == pytest.approx(mean, rel=0.03)
    assert figures["p99_latency_s"] == pytest.approx(math.log(100) * mean, rel=0.05)
    assert figures["max_utilization"] == pytest.approx(rho, abs=0.02)
    assert figures["dropped"] == 0


def test_power_of_two_matches_the_supermarket_model_for_many_servers():
    # Mitzenmacher's supermarket model: with d = 2 choices the share of servers
    # holding at least i requests tends to rho^(2^i - 1) as n grows, so a server
    # holds sum_i rho^(2^i - 1) on average and, by Little's law, the mean time in
    # system is that over lambda per server: 2.61/mu at rho = 0.9 (an M/M/1 queue
    # would give 10/mu). With 100 servers the finite-n excess is about 1/n: eight
    # seeds of 2000 s measured +1.2 % (spread 0.5 % per run; +2.4 % with 50
    # servers). So one 2000 s run (1.8M requests) must land within 1.2 % +- 3 x
    # 0.5 % of the limit: from 1 % below to 3 % above.
    servers, rho, mu = 100, 0.9, 10.0
    figures = measure(
        {
            "strategy": "power_of_two",
            "servers": servers,
            "arrival_rate": rho * mu * servers,
            "service_rate": mu,
        },
        duration=2020,
        warmup=20,
    )
    limit = supermarket_mean_time(rho * mu, mu)
    assert limit == pytest.approx(2.6138 / mu, rel=1e-3)
    assert 0.99 * limit <= figures["mean_latency_s"] <= 1.03 * limit


def test_at_equal_load_least_connections_beats_power_of_two_beats_random():
    # At rho = 0.8 over 10 servers: random gives the M/M/1 figure 5/mu, two
    # choices about 2/mu, joining the shortest queue less still. The gaps are
    # tens of per cent; each 150 s run's mean has a spread of about 2 %.
    load = {"servers": 10, "arrival_rate": 800.0, "service_rate": 100.0}
    latency = {
        s: measure({"strategy": s} | load, duration=150)["mean_latency_s"]
        for s in ("least_connections", "power_of_two", "random")
    }
    assert latency["least_connections"] < 0.8 * latency["power_of_two"]
    assert latency["power_of_two"] < 0.6 * latency["random"]
    assert latency["random"] == pytest.approx(mm1_mean_time(80.0, 100.0), rel=0.08)


def test_full_queues_drop_the_share_an_mm1k_queue_predicts():
    # Random routing with at most K = 5 requests per server: each server is an
    # M/M/1/5 queue, which turns away p_5 = (1 - rho) rho^5 / (1 - rho^6) of its
    # arrivals (Poisson arrivals see time averages), 12.6 % at rho = 0.9. With
    # 300k arrivals the spread of the measured share is well under 0.5 points.
    figures = measure(
        {
            "strategy": "random",
            "servers": 10,
            "arrival_rate": 900.0,
            "service_rate": 100.0,
            "queue_limit": 5,
        },
        duration=330,
        warmup=5,
    )
    expected = mm1k_blocking(90.0, 100.0, 5)
    assert figures["drop_ratio"] == pytest.approx(expected, abs=0.01)
    assert figures["dropped"] == figures["dropped_full"]


def test_least_cpu_herds_on_stale_load_reports():
    # Between two reports every request goes to the server that looked idlest,
    # so it floods while the others idle: worse than picking at random. Fresher
    # reports shrink the herd.
    load = {"servers": 5, "arrival_rate": 250.0, "service_rate": 100.0}
    stale = measure({"strategy": "least_cpu", "report_interval_s": 1.0} | load)
    fresh = measure({"strategy": "least_cpu", "report_interval_s": 0.05} | load)
    blind = measure({"strategy": "random"} | load)
    assert stale["mean_latency_s"] > 5 * blind["mean_latency_s"]
    assert fresh["mean_latency_s"] < stale["mean_latency_s"] / 3
    engine = Balancer({"strategy": "least_cpu", "api_share": 0.0} | load, seed=3)
    engine.advance(10)
    # Within one report interval nearly all the work lands on one server.
    assert engine.metrics()["imbalance_recent"] > 1.8


def test_a_dead_server_under_dns_round_robin_keeps_receiving_until_the_ttl_runs_out():
    params = {
        "servers": 4,
        "arrival_rate": 400.0,
        "service_rate": 200.0,
        "clients": 500,
        "client_skew": 0.0,
        "dns_ttl_s": 5.0,
        "health_interval_s": 1.0,
        "strategy": "dns_round_robin",
    }
    engine = Balancer(params, seed=4)
    engine.advance(10.1)
    engine.apply("kill", {"server": 2})
    # The DNS drops server 2 from its answers at the health check at t = 11, but
    # clients that asked before keep their answer until it expires (by t = 16).
    drops = []
    for _ in range(16):
        before = engine.metrics()["dropped_dead"]
        engine.advance(0.5)
        drops.append(engine.metrics()["dropped_dead"] - before)
    after_check, after_ttl = drops[2:11], drops[12:]  # (11.1, 15.6] and (16.1, 18.1]
    assert sum(after_check) > 20
    assert sum(after_ttl) == 0
    assert engine.metrics()["clients_on_dead_server"] == 0
    # Behind a balancer the same failure stops costing requests at the check.
    engine = Balancer(params | {"strategy": "round_robin"}, seed=4)
    engine.advance(10.1)
    engine.apply("kill", {"server": 2})
    engine.advance(1.0)
    dead = engine.metrics()["dropped_dead"]
    assert dead > 0
    engine.advance(6)
    assert engine.metrics()["dropped_dead"] == dead


def test_ip_hash_pins_each_client_to_one_server():
    # One client: every request goes to the same server, whatever the load.
    engine = Balancer(
        {
            "strategy": "ip_hash",
            "clients": 1,
            "servers": 4,
            "arrival_rate": 20.0,
            "service_rate": 100.0,
        },
        seed=2,
    )
    engine.advance(20)
    assert sorted(engine.metrics()["server_utilization"])[:3] == [0.0, 0.0, 0.0]
    # Many equal clients spread out, but not as evenly as round robin does.
    load = {
        "servers": 4,
        "arrival_rate": 300.0,
        "service_rate": 100.0,
        "clients": 50,
        "client_skew": 1.0,
    }
    hashed = measure({"strategy": "ip_hash"} | load)
    rotated = measure({"strategy": "round_robin"} | load)
    assert hashed["imbalance"] > 1.3 * rotated["imbalance"]


def test_weighted_round_robin_evens_out_unequal_servers():
    # Speeds from 0.5 to 1.5: plain round robin gives the slowest server as much
    # work as the fastest (utilization 0.6 / 0.5 = 1.2, so it overflows), while
    # weights in proportion to speed load every server alike (0.6).
    load = {
        "servers": 5,
        "arrival_rate": 300.0,
        "service_rate": 100.0,
        "speed_spread": 0.5,
        "queue_limit": 50,
    }
    plain = measure({"strategy": "round_robin"} | load)
    weighted = measure({"strategy": "weighted_round_robin"} | load)
    assert plain["dropped_full"] > 0
    assert plain["max_utilization"] > 0.95
    assert weighted["dropped"] == 0
    assert max(weighted["server_utilization"]) < 0.66
    assert min(weighted["server_utilization"]) > 0.54


def test_dedicated_pools_send_each_request_type_only_to_its_servers():
    base = {
        "strategy": "dedicated_pools",
        "servers": 4,
        "api_servers": 1,
        "arrival_rate": 100.0,
        "service_rate": 100.0,
    }
    engine = Balancer(base | {"api_share": 0.0}, seed=1)
    engine.advance(10)
    utilization = engine.metrics()["server_utilization"]
    assert utilization[0] == 0.0 and min(utilization[1:]) > 0.2
    # API calls five times as heavy at a third of the traffic: the API server
    # saturates and drops while the web pool keeps its latency.
    engine = Balancer(
        base | {"api_share": 0.3, "api_cost": 5.0, "queue_limit": 20}, seed=1
    )
    engine.advance(30)
    figures = engine.metrics()
    assert figures["server_utilization"][0] > 0.95
    assert max(figures["server_utilization"][1:]) < 0.4
    assert figures["dropped_full"] > 0


def test_an_api_pool_too_small_drops_what_an_mm1k_queue_predicts_and_lends_nothing():
    # The lesson's dedicated-pools step, ten times faster: API calls (a fifth of
    # 300 a second, each three pages' work) all go to one server of 100 pages a
    # second, an M/M/1/20 queue at rho = 1.8 that turns away about 44 % of them,
    # while the four web servers stay 60 % busy and cannot take any of it.
    figures = measure(
        {
            "strategy": "dedicated_pools",
            "servers": 5,
            "api_servers": 1,
            "arrival_rate": 300.0,
            "service_rate": 100.0,
            "api_share": 0.2,
            "api_cost": 3.0,
            "queue_limit": 20,
        },
        duration=1005,
        warmup=5,
    )
    calls = 300.0 * 0.2
    expected = calls * mm1k_blocking(calls, 100.0 / 3.0, 20) * 1000
    assert figures["dropped"] == pytest.approx(expected, rel=0.05)
    assert figures["dropped"] == figures["dropped_full"]
    assert figures["server_utilization"][0] > 0.99
    assert figures["server_utilization"][1:] == pytest.approx([0.6] * 4, abs=0.03)


def test_killing_a_server_loses_its_requests_and_removing_one_drains_it():
    engine = Balancer(
        {
            "servers": 2,
            "arrival_rate": 300.0,
            "service_rate": 100.0,
            "queue_limit": 30,
            "api_share": 0.0,
        },
        seed=5,
    )
    engine.advance(5)
    held = engine.count[0]
    assert held > 0
    (event,) = engine.apply("kill", {"server": 1})
    assert event["lost"] == held
    assert engine.metrics()["dropped_killed"] == held
    engine.apply("revive", {"server": 1})
    engine.advance(2)
    assert engine.metrics()["server_up"] == [1, 1]
    events = engine.apply("remove_server", {"server": 2})
    assert events[0]["draining"] > 0
    gone = []
    for _ in range(20):
        gone += [e for e in engine.advance(0.5) if e["type"] == "balancer.gone"]
    assert [e["server"] for e in gone] == [2]
    assert engine.metrics()["server_names"] == ["s1"]
    added = engine.apply("add_server", {"speed": 2.0})
    assert added[0]["server"] == 3
    assert engine.metrics()["server_names"] == ["s1", "s3"]


def test_imbalance_leaves_out_dead_servers_and_counts_a_revived_one_while_up():
    # Round robin over 4 equal servers at load 0.1 (0.13 on three): the live
    # ones stay even, and 12,000 requests a server every 3 s keep the noise of
    # their loads to a few percent.
    engine = Balancer(
        {
            "servers": 4,
            "strategy": "round_robin",
            "arrival_rate": 4000.0,
            "service_rate": 10000.0,
            "api_share": 0.0,
            "queue_limit": 10_000,
        },
        seed=4,
    )
    engine.advance(20)
    engine.apply("kill", {"server": 2})
    engine.advance(20)
    figures = engine.metrics()
    # Counted at zero load the dead server would make it 4/3 or more over the
    # last 3 s (three loads and a zero) and about 1.2 since the start.
    assert figures["imbalance_recent"] == pytest.approx(1.0, abs=0.05)
    assert figures["imbalance"] == pytest.approx(1.0, abs=0.03)
    engine.apply("revive", {"server": 2})
    engine.advance(20)
    figures = engine.metrics()
    assert figures["imbalance_recent"] == pytest.approx(1.0, abs=0.05)
    # The others did carry a third more for 20 s of 60, a true imbalance of
    # about 1.035; the revived server's 20 s down averaged in as zero load
    # would make it about 1.12.
    assert 1.0 < figures["imbalance"] < 1.07


def test_littles_law_holds_for_the_whole_pool():
    # Requests in system (time average) = throughput x mean time in system. Both
    # sides are measured independently (area under the per-server counts versus
    # completed requests' latencies); only the requests in flight at the two ends
    # of the run separate them.
    figures = measure(
        {
            "strategy": "power_of_two",
            "servers": 8,
            "arrival_rate": 600.0,
            "service_rate": 100.0,
        },
        duration=60,
    )
    little = figures["throughput_per_s"] * figures["mean_latency_s"]
    assert figures["mean_in_system"] == pytest.approx(little, rel=0.02)


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(0.01, 1.0)),
        st.tuples(
            st.sampled_from(["kill", "revive", "remove_server"]), st.integers(1, 8)
        ),
        st.tuples(st.just("add_server"), st.sampled_from(["web", "api"])),
        st.tuples(st.just("set_strategy"), st.sampled_from(STRATEGIES)),
        st.tuples(st.just("set_arrival_rate"), st.floats(1.0, 800.0)),
        st.tuples(st.just("queue_limit"), st.integers(1, 30)),
        st.tuples(st.just("servers"), st.integers(1, 8)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(
    servers=st.integers(1, 6),
    limit=st.integers(1, 20),
    strategy=st.sampled_from(STRATEGIES),
    seed=st.integers(0, 1000),
    actions=ACTIONS,
)
def test_requests_are_conserved_and_queues_never_exceed_their_limit(
    servers, limit, strategy, seed, actions
):
    engine = Balancer(
        {
            "servers": servers,
            "queue_limit": limit,
            "strategy": strategy,
            "arrival_rate": 200.0,
            "service_rate": 40.0,
            "api_servers": 0,
            "clients": 30,
            "dns_ttl_s": 2.0,
        },
        seed=seed,
    )
    for action, arg in actions:
        if action == "advance":
            engine.advance(arg)
        elif action in ("kill", "revive", "remove_server"):
            # A server that is not a valid target right now is refused; the
            # refusal itself is checked in test_bad_commands_name_the_allowed_servers.
            with contextlib.suppress(CommandError):
                engine.apply(action, {"server": arg})
        elif action == "add_server":
            engine.apply("add_server", {"pool": arg})
        elif action == "set_strategy":
            engine.apply("set_strategy", {"strategy": arg})
        elif action == "set_arrival_rate":
            engine.apply("set_arrival_rate", {"rate": arg})
        else:
            engine.set_param(action, arg)
        figures = engine.metrics()
        in_flight = figures["in_flight"]
        assert (
            figures["arrived"] == figures["completed"] + figures["dropped"] + in_flight
        )
        assert in_flight == sum(len(q) for q in engine.queues)
        assert all(n == len(q) for n, q in zip(engine.count, engine.queues))
        assert max(engine.count) <= engine.p["queue_limit"]
        # One pending completion per busy server, none for a dead or idle one.
        assert sorted(e[2] for e in engine.heap) == [
            s for s, n in enumerate(engine.count) if n
        ]
        assert all(engine.alive[s] for s, n in enumerate(engine.count) if n)
        assert all(0.0 <= u <= 1.0 + 1e-9 for u in figures["server_utilization"])
        # Busiest over mean among the live servers: at most their number.
        live = sum(
            1 for s in engine._present() if engine.alive[s] and not engine.removed[s]
        )
        assert figures["imbalance"] <= max(live, 1) + 1e-9
        assert figures["imbalance_recent"] <= max(live, 1) + 1e-9


def test_bad_commands_name_the_allowed_servers():
    engine = Balancer({"servers": 3})
    with pytest.raises(CommandError) as info:
        engine.apply("kill", {"server": 7})
    assert info.value.field == "kill.server"
    assert "one of 1, 2, 3" in info.value.message
    engine.apply("kill", {"server": 2})
    with pytest.raises(CommandError) as info:
        engine.apply("revive", {"server": 1})
    assert "a dead server: one of 2" in info.value.message
