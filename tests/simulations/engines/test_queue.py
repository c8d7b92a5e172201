"""The queue engine: slow work in the web thread (sync) or on a job queue (async)."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError
from simulations.engines.runner import make_step, run_headless
from simulations.theory.erlang import (
    erlang_c,
    md1_mean_wait,
    mmc_mean_queue_length,
    mmc_mean_wait,
    mmc_utilization,
)

from .golden import assert_golden, trace

Queue = get_engine("queue")


def in_flight_jobs(engine):
    """Return the ids of every job waiting or in service (sign dropped)."""
    ids = [abs(j) for _, j in engine.heap if j]
    ids += [j for _, j in engine.jobq] + [j for _, j in engine.backlog]
    return ids


def test_golden_trace_with_kills_a_burst_and_resizing():
    steps = [
        make_step(Queue, 2, "kill_worker", {}),
        make_step(Queue, 3, "kill_worker", {"before_ack": True}),
        make_step(Queue, 4, "burst", {"requests": 40}),
        make_step(Queue, 5, "remove_worker", {"count": 1}),
        make_step(Queue, 7, "add_worker", {"count": 3}),
    ]
    frames = trace(
        Queue,
        {"arrival_rate": 12, "service_rate": 5, "workers": 3, "queue_capacity": 30},
        seed=7,
        steps=steps,
        frames=20,
        dt=0.5,
    )
    assert_golden("queue", frames)


def test_golden_trace_in_sync_mode_with_timeouts():
    steps = [make_step(Queue, 3, "burst", {"requests": 30})]
    frames = trace(
        Queue,
        {
            "mode": "sync",
            "arrival_rate": 12,
            "service_rate": 5,
            "web_threads": 3,
            "request_timeout_s": 1.5,
        },
        seed=7,
        steps=steps,
        frames=16,
        dt=0.5,
    )
    assert_golden("queue_sync", frames)


def batch_means(engine, batches, length):
    """Advance ``batches`` runs of ``length`` s; return per-batch mean wait and P(wait)."""
    waits, p_waits = [], []
    for _ in range(batches):
        wait_sum, started = engine.wait_sum, engine.started
        waited, accepted = engine.waited, engine.accepted
        engine.advance(length)
        waits.append((engine.wait_sum - wait_sum) / (engine.started - started))
        p_waits.append((engine.waited - waited) / (engine.accepted - accepted))
    return waits, p_waits


@pytest.mark.parametrize(
    "arrival_rate", [20.0, 34.0]
)  # loads 0.5 and 0.85 on 4 workers
def test_waiting_matches_erlang_c_and_littles_law(arrival_rate):
    mu, c = 10.0, 4
    engine = Queue(
        {"arrival_rate": arrival_rate, "service_rate": mu, "workers": c}, seed=11
    )
    # The queue forgets its empty start within a few relaxation times, about
    # 1 / (c mu (1 - sqrt(rho))^2) = 4 s at the higher load: 200 s is plenty.
    engine.advance(200)
    engine.reset_stats()
    # Batches of 200 s hold about 7,000 jobs and span dozens of relaxation times,
    # so their means are close to independent; 50 of them give the standard error.
    waits, p_waits = batch_means(engine, batches=50, length=200)
    figures = engine.metrics()
    expected_wait = mmc_mean_wait(arrival_rate, mu, c)
    expected_p = erlang_c(c, arrival_rate / mu)
    for measured, batches, expected in (
        (figures["mean_wait_s"], waits, expected_wait),
        (figures["p_wait"], p_waits, expected_p),
    ):
        se = statistics.stdev(batches) / math.sqrt(len(batches))
        # The test must be able to tell a wrong formula: the run is long enough
        # for the standard error to be a few percent of the figure at most.
        assert se < 0.04 * expected
        # Four standard errors: a correct engine fails about once in 16,000 runs.
        assert abs(measured - expected) < 4 * se, (measured, expected, se)
    # Little's law on the same run: the time average of the queue length equals
    # the accepted arrival rate times the mean wait, up to the jobs waiting at
    # the two ends of the 10,000 s window (a few, against about 300,000 jobs).
    rate = engine.accepted / (engine.now - engine.since)
    assert figures["mean_queue_length"] == pytest.approx(
        rate * figures["mean_wait_s"], rel=0.005
    )
    assert figures["mean_queue_length"] == pytest.approx(
        mmc_mean_queue_length(arrival_rate, mu, c), rel=0.15
    )
    # Busy time over about 200,000 jobs: the standard error is well below 0.005.
    assert figures["utilization"] == pytest.approx(
        mmc_utilization(arrival_rate, mu, c), abs=0.01
    )


def test_fixed_job_durations_on_one_worker_match_pollaczek_khinchine():
    # M/D/1 at load 0.7: 3,000 s hold about 210,000 jobs; the wait's relaxation
    # time is under 10 s, so the standard error is about 1 % of the mean and
    # 5 % is five of them.
    summary = run_headless(
        Queue,
        {
            "arrival_rate": 70,
            "service_rate": 100,
            "workers": 1,
            "service_dist": "deterministic",
        },
        seed=5,
        duration=3100,
        warmup=100,
    )
    assert summary.metrics["mean_wait_s"] == pytest.approx(
        md1_mean_wait(70, 0.01), rel=0.05
    )
    # Fixed durations wait half as long as exponential ones at the same load.
    assert summary.metrics["mean_wait_s"] < 0.6 * mmc_mean_wait(70, 100, 1)


def test_recent_utilization_counts_busy_time_as_it_passes_not_at_job_start():
    # Two workers, jobs of exactly 1 s, and three jobs at t = 0: both workers are
    # busy for the first second, one of them for the next, then none.
    engine = Queue(
        {
            "workers": 2,
            "service_rate": 1,
            "service_dist": "deterministic",
            "arrival_rate": 0.1,
        },
        seed=0,
    )
    assert engine.next_arrival > 5  # no other request in the way
    engine.apply("burst", {"requests": 3})
    expected = {0.5: 1.0, 1.0: 1.0, 2.0: 3 / 4, 3.0: 3 / 6, 4.0: 1 / 6, 5.0: 0.0}
    for t, share in expected.items():
        engine.advance_to(t)
        # Counting a job's whole second when it starts would give 2.0 at 0.5 s.
        assert engine.metrics()["utilization_recent"] == pytest.approx(share), t
    # The figure since the start keeps the idle seconds: 3 busy of 10.
    assert engine.metrics()["utilization"] == pytest.approx(0.3)


def test_recent_utilization_reads_the_new_pool_right_after_a_mode_switch():
    # Async: 4 workers at load 0.75. Sync: 8 web threads at load 30 / 10 / 8.
    engine = Queue(
        {"arrival_rate": 30, "service_rate": 10, "workers": 4, "web_threads": 8},
        seed=9,
    )
    engine.advance(60)
    engine.set_param("mode", "sync")
    engine.advance(3)
    figures = engine.metrics()
    # Since the start the web threads were idle for 60 s of 63: that figure
    # reads near 0.02; the last 3 s are the threads' work alone.
    assert figures["utilization"] < 0.03
    assert figures["utilization_recent"] > 0.2
    shares = []
    for _ in range(100):
        engine.advance(3)
        shares.append(engine.metrics()["utilization_recent"])
    # 100 windows of 3 s hold about 9,000 jobs: their mean busy share is within
    # about 1 % of the offered load per thread.
    assert sum(shares) / len(shares) == pytest.approx(30 / 10 / 8, abs=0.02)


def test_sync_mode_times_out_under_overload_while_async_answers_at_once():
    load = {
        "arrival_rate": 100,
        "service_rate": 10,
        "web_threads": 8,
        "workers": 8,
        "request_timeout_s": 2.0,
        "enqueue_ms": 5.0,
    }
    sync = run_headless(Queue, {**load, "mode": "sync"}, seed=3, duration=60, warmup=10)
    async_ = run_headless(
        Queue, {**load, "mode": "async"}, seed=3, duration=60, warmup=10
    )
    # 100 requests/s against 8 threads x 10/s: a fifth cannot be served at all.
    assert sync.metrics["timed_out"] > 0.15 * sync.metrics["arrived"]
    assert sync.metrics["p95_response_s"] == pytest.approx(2.0)
    assert sync.metrics["utilization"] > 0.97
    # The same load in async mode: every request is answered after the enqueue,
    # nobody times out, and the backlog shows up as waiting jobs instead.
    assert async_.metrics["timed_out"] == 0
    assert async_.metrics["p95_response_s"] == pytest.approx(0.005)
    assert async_.metrics["mean_wait_s"] > 5.0


def test_sync_mode_under_light_load_answers_within_the_job_time():
    summary = run_headless(
        Queue,
        {"mode": "sync", "arrival_rate": 10, "service_rate": 10, "web_threads": 8},
        seed=3,
        duration=120,
    )
    assert summary.metrics["timed_out"] == 0
    # With 8 threads at load 1/8 almost nobody waits: responses are the job time,
    # whose 95th percentile is ln(20) / 10 = 0.30 s (bins are 2.5 % wide).
    assert summary.metrics["p95_response_s"] == pytest.approx(
        math.log(20) / 10, rel=0.1
    )
    assert summary.metrics["p_wait"] < 0.01


def test_a_killed_worker_job_is_retried_and_completed_exactly_once():
    engine = Queue({"arrival_rate": 20, "service_rate": 5, "workers": 4}, seed=2)
    engine.ledger = {}
    engine.advance(2)
    events = engine.apply("kill_worker")
    job = events[0]["job"]
    assert events[1] == {
        "type": "job.retried",
        "t": 2.0,
        "job": job,
        "done_before": False,
    }
    assert engine.metrics()["workers"] == 3
    engine.advance(30)
    assert engine.ledger[job] == 1
    assert engine.metrics()["retried"] == 1
    assert engine.metrics()["duplicates"] == 0


def test_a_worker_killed_before_acknowledging_makes_its_job_run_twice():
    engine = Queue({"arrival_rate": 20, "service_rate": 5, "workers": 4}, seed=2)
    engine.ledger = {}
    engine.advance(2)
    job = engine.apply("kill_worker", {"before_ack": True})[0]["job"]
    events = []
    for _ in range(60):
        events += engine.advance(0.5)
    assert {"type": "job.retried", "job": job, "done_before": True}.items() <= next(
        e for e in events if e["type"] == "job.retried"
    ).items()
    assert engine.ledger[job] == 2
    figures = engine.metrics()
    assert (figures["retried"], figures["duplicates"], figures["workers"]) == (1, 1, 3)
    assert sum(engine.ledger.values()) == figures["completed"]


def test_removed_workers_finish_their_job_before_leaving():
    engine = Queue({"arrival_rate": 50, "service_rate": 5, "workers": 4}, seed=4)
    engine.advance(5)
    assert engine.metrics()["pool_counts"][:2] == [4, 0]
    engine.apply("remove_worker", {"count": 2})
    assert engine.metrics()["workers"] == 4  # both still busy
    engine.advance(10)
    assert engine.metrics()["workers"] == 2


def test_burst_fills_a_bounded_queue_and_the_rest_is_rejected():
    engine = Queue({"arrival_rate": 1, "workers": 2, "queue_capacity": 50}, seed=1)
    engine.advance(1)
    before = engine.metrics()
    events = engine.apply("burst", {"requests": 100})
    busy = engine.metrics()["pool_counts"][0]
    assert events[0]["rejected"] == 100 - 50 - (busy - before["pool_counts"][0])
    assert engine.metrics()["queue_length"] == 50


ACTIONS = [
    "advance",
    "advance",
    "advance",
    "kill",
    "kill_before_ack",
    "add",
    "remove",
    "burst",
    "switch_mode",
    "timeout",
]


@settings(max_examples=200, deadline=None)
@given(
    mode=st.sampled_from(["sync", "async"]),
    workers=st.integers(0, 5),
    threads=st.integers(1, 5),
    capacity=st.integers(0, 20),
    rate=st.floats(1, 60),
    dist=st.sampled_from(["exponential", "deterministic"]),
    actions=st.lists(st.sampled_from(ACTIONS), max_size=15),
    seed=st.integers(0, 1000),
)
def test_no_job_is_lost_or_done_twice_unless_retried_and_capacities_hold(
    mode, workers, threads, capacity, rate, dist, actions, seed
):
    engine = Queue(
        {
            "mode": mode,
            "workers": workers,
            "web_threads": threads,
            "queue_capacity": capacity,
            "arrival_rate": rate,
            "service_rate": 8,
            "service_dist": dist,
            "request_timeout_s": 0.5,
        },
        seed=seed,
    )
    engine.ledger = {}
    retried = set()
    for action in actions:
        events = []
        if action == "advance":
            events = engine.advance(0.4)
        elif action in ("kill", "kill_before_ack"):
            if engine.p["workers"]:
                events = engine.apply(
                    "kill_worker", {"before_ack": action == "kill_before_ack"}
                )
        elif action == "add":
            events = engine.apply("add_worker", {"count": 2})
        elif action == "remove":
            if engine.p["workers"]:
                events = engine.apply("remove_worker", {"count": 1})
        elif action == "burst":
            events = engine.apply("burst", {"requests": 15})
        elif action == "switch_mode":
            events = engine.set_param(
                "mode", "sync" if engine.p["mode"] == "async" else "async"
            )
        else:
            events = engine.set_param("request_timeout_s", 0.2)
        events += engine.advance(0.1)
        retried |= {e["job"] for e in events if e["type"] == "job.retried"}
        figures = engine.metrics()
        flight = in_flight_jobs(engine)
        # Every job is in one place at a time.
        assert len(flight) == len(set(flight)) == figures["in_flight"]
        # Capacities: busy servers never outnumber the pool, and new work is
        # refused when the queue is full (a job delivered again keeps its place).
        busy_w, idle_w, busy_t, idle_t = figures["pool_counts"]
        assert min(idle_w, idle_t) >= 0
        assert busy_w + idle_w == engine.size_w and busy_t + idle_t == engine.size_t
        assert engine.size_t >= engine.p["web_threads"]
        limit = engine.p["queue_capacity"] or math.inf
        assert len(engine.jobq) <= limit + len(retried)
        assert len(engine.backlog) <= limit
        # Nothing created or lost: each job that arrived was rejected, gave up,
        # is in flight, or was completed.
        done = {abs(j) for j in engine.ledger}
        assert all(abs(j) <= engine.next_job for j in flight)
        assert figures["arrived"] == (
            len(done | set(flight)) + figures["rejected"] + figures["abandoned"]
        )
        assert figures["arrived"] == (
            figures["completed"]
            - figures["duplicates"]
            + figures["rejected"]
            + figures["abandoned"]
            + figures["in_flight"]
            - len(engine.redo)
        )
        # Done twice only after a retry (at-least-once, never at-random).
        twice = {j for j, n in engine.ledger.items() if n > 1}
        assert twice <= retried
        assert sum(engine.ledger.values()) == figures["completed"]
        assert figures["duplicates"] == sum(n - 1 for n in engine.ledger.values())
        assert 0.0 <= figures["utilization_recent"] <= 1.0 + 1e-9


def test_worker_commands_name_the_counts_the_current_pool_allows():
    engine = Queue({"workers": 2})
    with pytest.raises(CommandError) as info:
        engine.apply("remove_worker", {"count": 3})
    assert info.value.field == "remove_worker.count"
    assert "from 1 to 2" in info.value.message
    with pytest.raises(CommandError) as info:
        engine.apply("add_worker", {"count": 499})
    assert "from 1 to 498" in info.value.message
    engine.apply("remove_worker", {"count": 2})
    with pytest.raises(CommandError) as info:
        engine.apply("kill_worker")
    assert "no worker is running" in info.value.message


# How the page learns its job is done -------------------------------------------


def test_a_page_polls_a_fixed_length_job_until_the_first_poll_after_it_ends():
    # 2.5 s jobs, never a wait, answered after 5 ms: polls at 1, 2 and 3 s after the
    # answer, the third finding the job done 3 - 2.495 = 0.505 s after it ended.
    engine = Queue(
        {
            "arrival_rate": 4,
            "service_rate": 0.4,
            "service_dist": "deterministic",
            "workers": 60,
            "notify": "poll",
            "poll_interval_s": 1.0,
        },
        seed=1,
    )
    engine.advance(200)
    figures = engine.metrics()
    assert figures["mean_wait_s"] == 0.0
    assert figures["polls_per_job"] == 3.0
    assert figures["result_delay_s"] == pytest.approx(0.505)
    # three polls per job, four jobs a second
    assert figures["status_requests_per_s"] == pytest.approx(12.0, rel=0.05)
    assert figures["open_connections"] == 0


def test_polling_more_often_costs_requests_and_buys_a_quicker_result():
    figures = {}
    for period in (0.5, 2.0):
        params = {"arrival_rate": 2, "service_rate": 0.1, "workers": 40}
        engine = Queue({**params, "notify": "poll", "poll_interval_s": period}, seed=4)
        engine.advance(2_000)
        figures[period] = engine.metrics()
    often, rarely = figures[0.5], figures[2.0]
    # 10 s jobs: about 20.5 and 5.5 polls each; half the interval, on average
    assert often["status_requests_per_s"] > 3.5 * rarely["status_requests_per_s"]
    assert often["result_delay_s"] == pytest.approx(0.25, rel=0.1)
    assert rarely["result_delay_s"] == pytest.approx(1.0, rel=0.1)


def test_a_pushed_result_needs_no_poll_but_a_connection_per_job_in_flight():
    # Little's law: 2 jobs a second, each in the system about 10 s (no waiting
    # with 40 workers), so about 20 pages hold a connection open at any time.
    engine = Queue({"arrival_rate": 2, "service_rate": 0.1, "workers": 40}, seed=4)
    samples = []
    for _ in range(4_000):
        engine.advance(0.5)
        samples.append(engine.metrics()["in_flight"])
    figures = engine.metrics()
    assert figures["status_requests_per_s"] == 0.0
    assert figures["polls_per_job"] == 0.0
    assert figures["open_connections"] == pytest.approx(20, rel=0.08)
    assert figures["open_connections"] == pytest.approx(
        statistics.mean(samples), rel=0.01
    )
    # Polling holds no connection; back to push, the mean starts afresh.
    engine.set_param("notify", "poll")
    assert engine.metrics()["open_connections"] == 0.0
    engine.set_param("notify", "push")
    engine.apply("burst", {"requests": 100})
    engine.advance(1)
    assert engine.metrics()["open_connections"] > 100


def test_a_new_poll_interval_is_measured_afresh_and_pages_waiting_adopt_it():
    engine = Queue(
        {
            "arrival_rate": 2,
            "service_rate": 0.1,
            "workers": 40,
            "notify": "poll",
            "poll_interval_s": 0.5,
        },
        seed=6,
    )
    engine.advance(200)
    waiting = len(engine.born)
    assert waiting == engine.metrics()["in_flight"]
    engine.set_param("poll_interval_s", 2.0)
    assert engine.metrics()["status_requests_per_s"] == 0.0
    assert set(engine.born.values()) == {engine.now}
    engine.advance(1_000)
    assert engine.metrics()["status_requests_per_s"] == pytest.approx(2 * 5.5, rel=0.1)
    # switching to push stops the polling: no page is waiting on a timer any more
    engine.set_param("notify", "push")
    assert engine.born == {}
    assert engine.metrics()["status_requests_per_s"] == 0.0


def test_a_job_run_twice_is_seen_once_by_its_polling_page():
    engine = Queue(
        {"arrival_rate": 20, "service_rate": 5, "workers": 4, "notify": "poll"},
        seed=2,
    )
    engine.advance(2)
    engine.apply("kill_worker", {"before_ack": True})
    engine.advance(30)
    figures = engine.metrics()
    assert figures["duplicates"] == 1
    # every page saw its job's first completion; nobody waited for the rerun
    assert engine.polled == figures["completed"] - figures["duplicates"]
    assert len(engine.born) == figures["in_flight"]


def test_a_polling_run_restores_exactly_from_its_snapshot():
    engine = Queue({"arrival_rate": 20, "notify": "poll"}, seed=9)
    engine.advance(5)
    engine.apply("burst", {"requests": 40})
    copy = Queue.restore(engine.snapshot())
    engine.advance(5)
    copy.advance(5)
    assert copy.metrics() == engine.metrics()


def test_switching_the_mode_measures_the_result_delivery_afresh():
    engine = Queue(
        {"arrival_rate": 18, "service_rate": 2, "workers": 12, "notify": "poll"},
        seed=8,
    )
    engine.advance(20)
    engine.set_param("mode", "sync")
    engine.apply("burst", {"requests": 200})
    engine.advance(20)
    # sync requests are answered with their result: only the pages of the few
    # jobs left from async mode still poll
    assert engine.metrics()["status_requests_per_s"] < 2.0
    engine.set_param("mode", "async")
    engine.advance(60)
    # 18 pages a second, about 1.18 polls each (M/M/c with 12 workers)
    assert engine.metrics()["status_requests_per_s"] == pytest.approx(21.2, rel=0.1)
