"""The whole-stack engine: faults, sessions, the job queue, costs and bounds."""

from __future__ import annotations

import pytest

from simulations.engines.base import CommandError, ParamError
from simulations.engines.stack import LAYERS, MAX_IN_FLIGHT, StackEngine


def run(params=None, seconds=20.0, seed=1):
    engine = StackEngine(params or {}, seed=seed)
    engine.advance(seconds)
    return engine


def windows_mean(params, windows=40, seed=1):
    """Return the mean of each figure over back-to-back 5-second windows."""
    engine = StackEngine(params, seed=seed)
    engine.advance(10.0)
    total: dict[str, float] = {}
    for _ in range(windows):
        engine.advance(5.0)
        for name, value in engine.metrics().items():
            if isinstance(value, float):
                total[name] = total.get(name, 0.0) + value / windows
    return total


def test_it_refuses_no_balancer_in_front_of_several_servers_naming_the_field():
    with pytest.raises(ParamError) as info:
        StackEngine({"balancer": "none", "app_servers": 2})
    assert info.value.field == "balancer"
    assert "one of single, pair" in info.value.message
    assert StackEngine({"balancer": "none", "app_servers": 1}).present()[0] == "app"


@pytest.mark.parametrize(
    ("name", "value"), [("app_servers", 65), ("replicas", 17), ("workers", 0)]
)
def test_it_refuses_values_out_of_bounds_naming_the_field_and_range(name, value):
    with pytest.raises(ParamError) as info:
        StackEngine({name: value})
    assert info.value.field == name
    assert StackEngine.param(name).allowed() in info.value.message


def test_a_fault_in_a_layer_not_present_is_refused_naming_the_layers_present():
    engine = StackEngine({"cdn": False})
    with pytest.raises(CommandError) as info:
        engine.apply("fail", {"layer": "cdn"})
    assert info.value.field == "fail.layer"
    assert "lb, app, session, cache, db, queue" in info.value.message


def test_a_dead_cache_misses_every_read_and_the_database_takes_the_load():
    engine = run()
    before = engine.metrics()
    engine.apply("fail", {"layer": "cache"})
    engine.advance(10.0)
    after = engine.metrics()
    assert before["hit_ratio"] > 0.5
    assert after["hit_ratio"] == 0.0
    assert after["util_db"] > 1.5 * before["util_db"]


def test_a_dead_master_fails_the_writes_and_reads_go_on():
    engine = run({"replicas": 1, "cache_items": 0})
    engine.apply("fail", {"layer": "db"})
    engine.advance(10.0)
    m = engine.metrics()
    rate = engine.p["rate"] * engine.p["write_share"]
    assert m["errors_per_s"] == pytest.approx(rate, rel=0.3)
    assert m["served"] > 0 and m["util_db"] > 0
    engine.apply("repair", {"layer": "db"})
    engine.advance(6.0)
    assert engine.metrics()["errors_per_s"] == 0


def test_replicas_take_reads_while_every_write_stays_on_the_masters():
    # 100 req/s, a third of them writes (10 ms), the reads (5 ms) over a master
    # and 3 replicas: the masters 100 x (0.3 x 10 + 0.7 x 5 / 4) ms = 0.3875
    # busy, the replicas 100 x 0.7 x 5 / 4 ms = 0.0875.
    params = {"rate": 100, "write_share": 0.3, "cache_items": 0, "slow_share": 0.0}
    few = windows_mean({**params, "replicas": 3})
    more = windows_mean({**params, "replicas": 7})
    assert few["util_db_masters"] == pytest.approx(0.3875, rel=0.1)
    assert few["util_db_replicas"] == pytest.approx(0.0875, rel=0.15)
    assert few["util_db"] == few["util_db_masters"]
    # Twice the replicas halve the replicas' load, but the masters keep every
    # write: they stay above 100 x 0.3 x 10 ms = 0.3 busy.
    assert more["util_db_replicas"] == pytest.approx(0.04375, rel=0.2)
    assert 0.3 < more["util_db_masters"] < few["util_db_masters"]


def test_no_replicas_means_a_replica_utilisation_of_zero():
    m = run({"replicas": 0}).metrics()
    assert m["util_db_replicas"] == 0.0
    assert m["util_db_masters"] == m["util_db"] > 0


def test_the_other_app_servers_take_the_load_of_a_dead_one():
    engine = run({"app_servers": 2, "rate": 50})
    before = engine.metrics()["util_app"]
    engine.apply("fail", {"layer": "app"})
    engine.advance(10.0)
    after = engine.metrics()
    assert after["util_app"] > 1.6 * before
    assert next(x for x in engine.picture()["layers"] if x["name"] == "app")["up"] == 1


def test_local_sessions_are_lost_across_servers_and_central_ones_are_not():
    local = run({"sessions": "local", "app_servers": 4}).metrics()
    central = run({"sessions": "central", "app_servers": 4}).metrics()
    single = run({"sessions": "local", "app_servers": 1}).metrics()
    assert local["lost_sessions"] > 1000
    assert central["lost_sessions"] == 0
    assert single["lost_sessions"] == 0


def test_the_job_queue_takes_the_slow_work_off_the_response_time():
    slow = {"slow_share": 0.2, "slow_ms": 200, "rate": 50, "workers": 16}
    inline = run({**slow, "job_queue": False}, seconds=60).metrics()
    queued = run({**slow, "job_queue": True}, seconds=60).metrics()
    assert inline["mean_response_ms"] > 40 + queued["mean_response_ms"]
    assert queued["jobs_done"] > 0 and queued["share_ms_queue"] == 0


def test_the_cost_is_instances_times_the_hourly_price_times_730_hours():
    m = StackEngine({"app_servers": 4, "cost_app": 0.10}).metrics()
    assert m["cost_app"] == pytest.approx(292.0)
    p = StackEngine({"shards": 2, "replicas": 3, "cost_db": 0.25}).metrics()
    assert p["cost_db"] == pytest.approx(2 * 4 * 0.25 * 730)


def test_an_overloaded_stack_stays_bounded_and_counts_errors():
    engine = run({"rate": 5000, "app_ms": 1000, "app_servers": 1, "balancer": "none"})
    engine.advance(20.0)
    m = engine.metrics()
    assert m["errors_per_s"] > 4000
    assert m["in_flight"] <= MAX_IN_FLIGHT
    assert all(len(q) <= engine.p["queue_limit"] for q in engine.queues[:-1])


def test_the_picture_lists_every_layer_in_request_order():
    picture = run({"cdn": True}).picture()
    assert [x["name"] for x in picture["layers"]] == list(LAYERS)
    db = picture["layers"][LAYERS.index("db")]
    assert db["instances"] == 2 and db["on"]
    assert picture["bottleneck"] in LAYERS


def test_the_picture_says_how_many_requests_the_cdn_answers_itself():
    # 200 requests a second, 40 % for pre-rendered pages: about 80 a second stay
    # at the CDN (the 5-second window holds about 1,000 requests).
    engine = run({"cdn": True, "cdn_share": 0.4})
    picture = engine.picture()
    assert picture["cdn_rps"] / picture["rps"] == pytest.approx(0.4, abs=0.08)
    # A CDN that is down answers nothing: every request goes on to the site.
    engine.apply("fail", {"layer": "cdn"})
    engine.advance(10.0)
    picture = engine.picture()
    assert picture["rps"] > 150 and picture["cdn_rps"] == 0.0


def test_the_bottleneck_is_named_in_words_the_page_shows():
    spec = next(
        m for m in StackEngine.describe()["metrics"] if m["name"] == "bottleneck"
    )
    assert spec["words"]["app"] == "App servers" and spec["words"]["db"] == "Database"
    assert run().metrics()["bottleneck"] in spec["words"]
