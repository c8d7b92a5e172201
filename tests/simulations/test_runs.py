"""The scheduler driving runs: pacing, controls, checkpoints, takeover (scripted clock)."""

from __future__ import annotations

import json
import time

import pytest

from simulations.engines import get_engine
from simulations.models import Run
from simulations.runs import lifecycle
from simulations.runs.checkpoints import seal, unseal
from simulations.runs.scheduler import Clock, Scheduler
from simulations.runs.supervisor import supervise_once
from simulations.transport import MemoryTransport

pytestmark = pytest.mark.django_db


class ScriptedClock(Clock):
    """Time that passes only when the scheduler sleeps; actions fire at given times."""

    def __init__(self, actions=()):
        self.t = 0.0
        self.actions = sorted(actions, key=lambda a: a[0])

    def monotonic(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds
        while self.actions and self.actions[0][0] <= self.t:
            self.actions.pop(0)[1]()


def make_run(**params):
    return Run.objects.create(
        kind="cache",
        params=get_engine("cache").validate_params(params),
        seed=42,
        visitor="v1",
    )


def frames(transport, run_id):
    return [
        json.loads(text)
        for seq, sub, text in transport.streams[str(run_id)]
        if sub == 0
    ]


def statuses(transport, run_id):
    return [
        json.loads(text) for seq, sub, text in transport.streams[str(run_id)] if sub
    ]


def drive(run, transport, actions, watched=True):
    run_id = str(run.id)
    if watched:
        transport.present[run_id] = {"someone"}
    control = lambda msg: lambda: transport.push_control(run_id, msg)  # noqa: E731
    clock = ScriptedClock([(t, control(msg)) for t, msg in actions])
    scheduler = Scheduler(transport, clock, threaded=False)
    assert scheduler.adopt(run_id) == "adopted"
    scheduler.run(until=lambda: run_id in scheduler.outcomes)
    return scheduler.outcomes[run_id]


@pytest.fixture
def transport():
    return MemoryTransport(replay=10_000)


def test_a_paused_run_steps_one_frame_at_a_time(transport):
    run = make_run()
    actions = [
        (1.0, {"type": "pause"}),
        (2.0, {"type": "step"}),
        (2.5, {"type": "step"}),
        (3.0, {"type": "resume"}),
        (3.05, {"type": "step"}),  # running: refused, says why
        (3.5, {"type": "stop"}),
    ]
    assert drive(run, transport, actions) == "stopped"
    got = frames(transport, run.id)
    assert [f["seq"] for f in got] == list(range(1, len(got) + 1))
    paused_at = next(s for s in statuses(transport, run.id) if s["status"] == "paused")
    stepped = [s for s in statuses(transport, run.id) if "stepped" in s]
    assert [s["stepped"] for s in stepped] == [
        paused_at["seq"] + 1,
        paused_at["seq"] + 2,
    ]
    # Each step is one more frame of the usual tenth of a simulated second.
    by_seq = {f["seq"]: f for f in got}
    for s in stepped:
        assert by_seq[s["stepped"]]["t"] == pytest.approx(s["stepped"] / 10)
        assert s["status"] == "paused"
    # Nothing else was made while paused: the frame after the steps is the resume's.
    resumed = next(
        s
        for s in statuses(transport, run.id)
        if s["status"] == "running" and s["seq"] >= paused_at["seq"]
    )
    assert resumed["seq"] == paused_at["seq"] + 2
    refused = [s for s in statuses(transport, run.id) if "error" in s]
    assert refused[0]["error"] == {
        "field": "type",
        "message": "step: pause the run first, then step it a frame at a time",
    }


def test_a_run_streams_ten_frames_a_second_with_increasing_numbers(transport):
    run = make_run()
    assert drive(run, transport, [(2.0, {"type": "stop"})]) == "stopped"
    got = frames(transport, run.id)
    assert [f["seq"] for f in got] == list(range(1, len(got) + 1))
    assert 19 <= len(got) <= 21
    assert got[9]["t"] == pytest.approx(1.0)
    assert 0.0 <= got[-1]["metrics"]["hit_ratio"] <= 1.0
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    assert run.stop_reason == "stopped by its owner"
    assert statuses(transport, run.id)[-1]["status"] == "stopped"


def test_pause_stops_frames_and_resume_carries_on_from_the_same_time(transport):
    run = make_run()
    drive(
        run,
        transport,
        [(1.0, {"type": "pause"}), (3.0, {"type": "resume"}), (4.0, {"type": "stop"})],
    )
    got = frames(transport, run.id)
    # 1 s before the pause and 1 s after it; a control read in one tick's
    # round trip takes effect at the next frame.
    assert 19 <= len(got) <= 23
    steps = {round(b["t"] - a["t"], 6) for a, b in zip(got, got[1:])}
    assert steps == {0.1}
    assert [s["status"] for s in statuses(transport, run.id)][:3] == [
        "running",
        "paused",
        "running",
    ]


def test_speed_scales_simulated_time_per_frame(transport):
    run = make_run()
    drive(
        run, transport, [(0.5, {"type": "speed", "value": 4}), (1.0, {"type": "stop"})]
    )
    got = frames(transport, run.id)
    assert got[-1]["t"] - got[-2]["t"] == pytest.approx(0.4)
    assert got[-1]["speed"] == 4.0


def test_commands_and_parameter_changes_reach_the_world(transport):
    run = make_run(read_rate=1000)
    drive(
        run,
        transport,
        [
            (1.0, {"type": "command", "name": "crash"}),
            (1.5, {"type": "set", "name": "capacity", "value": 50}),
            (4.5, {"type": "stop"}),
        ],
    )
    got = frames(transport, run.id)
    assert got[5]["metrics"]["cache_up"] == 1
    assert got[-1]["metrics"]["cache_up"] == 0
    assert got[-1]["metrics"]["hit_ratio_recent"] == 0.0
    crash = [s for s in statuses(transport, run.id) if s.get("command") == "crash"]
    assert crash and crash[0]["events"][0]["type"] == "cache.crash"
    run.refresh_from_db()
    assert run.params["capacity"] == 50
    changed = [s for s in statuses(transport, run.id) if s.get("changed")]
    assert (
        changed[0]["params"]["capacity"] == 50
    )  # the page updates its controls from it


def test_a_control_that_breaks_a_rule_is_reported_and_the_run_goes_on(transport):
    run = make_run()
    # Controls are checked at the door; one that slips through is dropped, not fatal.
    transport.push_control(str(run.id), {"type": "command", "name": "explode"})
    drive(run, transport, [(1.0, {"type": "stop"})])
    assert len(frames(transport, run.id)) >= 9


def test_reset_restarts_the_world_and_numbering_goes_on(transport):
    run = make_run()
    drive(run, transport, [(1.0, {"type": "reset"}), (1.5, {"type": "stop"})])
    got = frames(transport, run.id)
    seqs = [f["seq"] for f in got]
    assert seqs == sorted(set(seqs))
    assert got[-1]["t"] < 1.0
    assert any(s.get("reset") for s in statuses(transport, run.id))


def test_a_run_nobody_watches_stops_after_the_idle_limit(transport, settings):
    settings.SCALELAB = {**settings.SCALELAB, "RUN_IDLE_S": 5}
    run = make_run()
    assert drive(run, transport, [], watched=False) == "idle"
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    assert run.stop_reason == "no viewer for 5 s"
    assert 45 <= len(frames(transport, run.id)) <= 60


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs in the driver."""


class DyingTransport(MemoryTransport):
    def __init__(self, die_at):
        super().__init__(replay=10_000)
        self.die_at = die_at

    def exchange(self, batch):
        if any(i == (self.die_at, 0) for _, _, i, _ in batch.entries):
            raise Killed
        return super().exchange(batch)


def test_a_worker_that_takes_over_sends_no_frame_twice_and_continues_the_same_world(
    settings,
):
    settings.SCALELAB = {**settings.SCALELAB, "CHECKPOINT_S": 1}
    run = make_run(read_rate=800)
    first = DyingTransport(die_at=25)
    with pytest.raises(Killed):
        drive(run, first, [])
    run.refresh_from_db()
    assert (
        10 <= run.checkpoint_seq < 25
    )  # the checkpoint is older than the last frame sent
    first.die_at = None
    first.leases.clear()  # the dead worker's lease runs out
    drive(run, first, [(1.0, {"type": "stop"})])
    got = frames(first, run.id)
    seqs = [f["seq"] for f in got]
    assert seqs == list(
        range(1, len(seqs) + 1)
    )  # strictly increasing, none repeated, none missing

    # The same run never interrupted gives the very same frames.
    twin = make_run(read_rate=800)
    steady = MemoryTransport(replay=10_000)
    drive(twin, steady, [(3.5, {"type": "stop"})])
    expected = {f["seq"]: f["metrics"] for f in frames(steady, twin.id)}
    for frame in got:
        if frame["seq"] in expected:
            assert frame["metrics"] == expected[frame["seq"]], frame["seq"]


def test_the_supervisor_hands_a_run_without_a_lease_to_a_worker(transport, monkeypatch):
    held, orphan = make_run(), make_run()
    stopped = make_run()
    Run.objects.filter(id=stopped.id).update(status=Run.Status.STOPPED)
    transport.acquire(str(held.id), "someone", 10)
    sent = []
    monkeypatch.setattr(lifecycle.drive_run_task, "delay", sent.append)
    assert supervise_once(transport) == [str(orphan.id)]
    assert supervise_once(transport) == []  # not handed out twice while it starts
    assert sent == [str(orphan.id)]


def test_checkpoints_are_refused_when_their_signature_does_not_match():
    sealed = seal({"x": 1})
    assert unseal(sealed) == {"x": 1}
    with pytest.raises(ValueError):
        unseal(sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_a_run_stops_at_its_maximum_life(transport, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.SCALELAB = {**settings.SCALELAB, "RUN_MAX_LIFE_S": 60}
    run = make_run()
    Run.objects.filter(id=run.id).update(
        created_at=timezone.now() - timedelta(seconds=61)
    )
    assert drive(run, transport, []) == "expired"
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    assert run.stop_reason == "reached the maximum run life of 60 s"


def test_a_run_whose_saved_state_cannot_be_restored_fails_once_and_says_why(
    transport, monkeypatch
):
    run = make_run()
    sealed = seal({"engine": b"not an engine", "seq": 7})
    Run.objects.filter(id=run.id).update(checkpoint=sealed, checkpoint_seq=7)
    assert drive(run, transport, []) == "failed"
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert "saved state cannot be restored" in run.stop_reason
    (status,) = statuses(transport, run.id)
    assert status["status"] == "failed"
    assert status["reason"] == run.stop_reason
    # Not handed to another worker to fail again.
    monkeypatch.setattr(lifecycle.drive_run_task, "delay", lambda run_id: None)
    assert supervise_once(transport) == []


def test_a_fault_inside_an_engine_ends_the_run_as_failed_for_its_viewers(
    transport, monkeypatch
):
    run = make_run()
    cache = get_engine("cache")
    healthy = cache.advance

    def advance(self, dt):
        if self.now >= 1.0:
            raise ZeroDivisionError("a fault in the engine")
        return healthy(self, dt)

    monkeypatch.setattr(cache, "advance", advance)
    assert drive(run, transport, []) == "failed"
    got = frames(transport, run.id)
    assert 9 <= len(got) <= 11  # frames up to the fault went out
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.stop_reason.startswith("the simulation stopped on an internal error")
    assert statuses(transport, run.id)[-1]["status"] == "failed"


def test_a_queued_run_is_queued_once_however_long_it_waits(
    transport, monkeypatch, django_capture_on_commit_callbacks
):
    from simulations.runs.lifecycle import run_create

    sent = []
    monkeypatch.setattr(lifecycle.drive_run_task, "delay", sent.append)
    monkeypatch.setattr(lifecycle, "get_transport", lambda: transport)
    with django_capture_on_commit_callbacks(execute=True):
        run_id = str(run_create(kind="cache", visitor="v2").id)
    assert sent == [run_id]
    # No worker has taken it yet: it has no lease, but it is waiting in the queue.
    for _ in range(5):
        assert supervise_once(transport) == []
    assert sent == [run_id]
    # A worker takes it, then dies: its lease runs out, and it is queued once more.
    scheduler = Scheduler(transport, ScriptedClock(), threaded=False)
    scheduler.adopt(run_id)
    scheduler.store.process()
    assert transport.leased([run_id]) == {run_id: True}
    transport.leases.clear()
    assert supervise_once(transport) == [run_id]
    assert supervise_once(transport) == []
    assert sent == [run_id, run_id]


def test_runs_due_together_share_one_exchange_a_tick(transport):
    exchanges = []
    real = transport.exchange

    def counting(batch):
        exchanges.append(len(batch.entries))
        return real(batch)

    transport.exchange = counting
    runs = [make_run() for _ in range(20)]
    for run in runs:
        transport.present[str(run.id)] = {"someone"}
    clock = ScriptedClock()
    scheduler = Scheduler(transport, clock, threaded=False)
    for run in runs:
        scheduler.adopt(str(run.id))
    scheduler.run(until=lambda: clock.t >= 2.0)
    made = sum(len(frames(transport, run.id)) for run in runs)
    assert made >= 20 * 19
    # About one exchange a frame period for all twenty runs, not one per frame.
    assert len(exchanges) <= 2.0 * 10 + 5
    for run in runs:
        transport.push_control(str(run.id), {"type": "stop"})
    scheduler.run(until=lambda: not scheduler.drivers)


def test_a_stopped_run_leaves_the_workers_memory(transport):
    from simulations.transport import RETIRED_TTL

    run = make_run()
    transport.present[str(run.id)] = {"someone"}
    clock = ScriptedClock(
        [(1.0, lambda: transport.push_control(str(run.id), {"type": "stop"}))]
    )
    scheduler = Scheduler(transport, clock, threaded=False)
    scheduler.adopt(str(run.id))
    scheduler.run(until=lambda: str(run.id) in scheduler.outcomes)
    assert scheduler.drivers == {}  # its engine is gone with its driver
    assert str(run.id) in transport.streams  # its frames stay a while, for a reconnect
    transport._sweep(time.monotonic() + RETIRED_TTL + 1)
    for table in (transport.streams, transport.last, transport.controls):
        assert str(run.id) not in table


def test_with_debug_on_the_store_keeps_no_log_of_its_checkpoint_queries(
    transport, settings
):
    from django.db import connection

    settings.DEBUG = True  # as `make run` has it: Django logs every query
    settings.SCALELAB = {**settings.SCALELAB, "CHECKPOINT_S": 1}
    run = make_run()
    drive(run, transport, [(5.0, {"type": "stop"})])
    # Each logged checkpoint query holds the run's whole state (tens of KB).
    writes = [q for q in connection.queries_log if q["sql"].startswith("UPDATE")]
    assert writes == []
    run.refresh_from_db()
    assert run.checkpoint_seq > 0
