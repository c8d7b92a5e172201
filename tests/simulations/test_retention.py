"""Checkpoint retention: stopped runs lose their saved state, never their row."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from simulations import tasks
from simulations.models import Run
from simulations.runs import supervisor
from simulations.runs.retention import checkpoints_prune
from simulations.transport import MemoryTransport, memory

pytestmark = pytest.mark.django_db

STATE = b"sealed state"


def make_run(status=Run.Status.STOPPED, ended_ago=timedelta(hours=25)):
    return Run.objects.create(
        kind="cache",
        params={"capacity": 100},
        seed=7,
        visitor="v1",
        status=status,
        stop_reason="stopped by its owner",
        last_seq=420,
        ended_at=None if ended_ago is None else timezone.now() - ended_ago,
        checkpoint=STATE,
        checkpoint_seq=400,
    )


def saved_state(run):
    run.refresh_from_db()
    return None if run.checkpoint is None else bytes(run.checkpoint)


@pytest.fixture
def retention(settings):
    def set_hours(hours):
        settings.SCALELAB = {**settings.SCALELAB, "CHECKPOINT_RETENTION_H": hours}

    return set_hours


def test_old_stopped_and_failed_runs_lose_their_checkpoint_and_keep_their_row():
    stopped = make_run(Run.Status.STOPPED, timedelta(hours=25))
    failed = make_run(Run.Status.FAILED, timedelta(days=30))
    ended_at = Run.objects.get(id=stopped.id).ended_at

    assert checkpoints_prune() == 2

    assert saved_state(stopped) is None and saved_state(failed) is None
    assert Run.objects.count() == 2
    assert (stopped.kind, stopped.params, stopped.seed) == (
        "cache",
        {"capacity": 100},
        7,
    )
    assert stopped.status == Run.Status.STOPPED and failed.status == Run.Status.FAILED
    assert stopped.stop_reason == "stopped by its owner"
    assert (stopped.last_seq, stopped.checkpoint_seq) == (420, 400)
    assert stopped.ended_at == ended_at


def test_runs_that_ended_within_the_retention_period_keep_their_checkpoint():
    recent = make_run(Run.Status.STOPPED, timedelta(hours=23))
    failed = make_run(Run.Status.FAILED, timedelta(minutes=5))

    assert checkpoints_prune() == 0

    assert saved_state(recent) == STATE and saved_state(failed) == STATE


def test_live_runs_keep_their_checkpoint_however_old():
    running = make_run(Run.Status.RUNNING, timedelta(days=365))
    paused = make_run(Run.Status.PAUSED, timedelta(days=365))
    Run.objects.update(created_at=timezone.now() - timedelta(days=400))

    assert checkpoints_prune(older_than=timedelta(0)) == 0

    assert saved_state(running) == STATE and saved_state(paused) == STATE


def test_the_retention_period_comes_from_the_setting(retention):
    retention(1)
    two_hours = make_run(ended_ago=timedelta(hours=2))
    half_hour = make_run(ended_ago=timedelta(minutes=30))

    assert checkpoints_prune() == 1

    assert saved_state(two_hours) is None and saved_state(half_hour) == STATE


def test_retention_zero_prunes_a_run_as_soon_as_it_ends(retention):
    retention(0)
    just_ended = make_run(ended_ago=timedelta(0))

    assert checkpoints_prune() == 1

    assert saved_state(just_ended) is None


def test_it_clears_in_batches_and_counts_every_run():
    runs = [make_run() for _ in range(7)]

    with CaptureQueriesContext(connection) as queries:
        assert checkpoints_prune(batch=3) == 7

    updates = [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 3  # 3 + 3 + 1, each its own short statement
    assert all(saved_state(run) is None for run in runs)
    assert checkpoints_prune(batch=3) == 0


def prune_command(*args):
    out = StringIO()
    call_command("prunecheckpoints", *args, stdout=out)
    return out.getvalue().strip()


def test_the_command_says_how_many_checkpoints_it_cleared():
    make_run(ended_ago=timedelta(hours=3))
    make_run(ended_ago=timedelta(hours=1))

    assert prune_command("--older-than-hours", "2") == (
        "Cleared 1 checkpoint of runs that ended more than 2 hours ago; "
        "their rows are kept."
    )
    assert prune_command().startswith("Cleared 0 checkpoints of runs that ended more")


def test_the_command_defaults_to_the_setting(retention):
    retention(0)
    make_run(ended_ago=timedelta(0))

    assert prune_command().startswith("Cleared 1 checkpoint of runs that ended more")


@pytest.mark.parametrize("value", ["-1", "8761", "soon", "1.5", ""])
def test_the_command_refuses_bad_hours_naming_the_option_and_the_range(value):
    run = make_run()

    with pytest.raises(CommandError) as refused:
        prune_command("--older-than-hours", value)

    assert str(refused.value) == (
        f"--older-than-hours must be an integer from 0 to 8760; got {value!r}"
    )
    assert saved_state(run) == STATE


@pytest.mark.django_db(transaction=True)
def test_the_periodic_task_clears_what_is_due():
    old = make_run(ended_ago=timedelta(days=2))

    assert tasks.prune_checkpoints() == 1

    assert saved_state(old) is None


@pytest.fixture
def clock(monkeypatch):
    """The memory transport's clock, moved by hand (claims expire on it)."""
    now = SimpleNamespace(t=1000.0)
    monkeypatch.setattr(memory, "time", SimpleNamespace(monotonic=lambda: now.t))
    return now


@pytest.fixture
def queued(monkeypatch):
    sent = []
    monkeypatch.setattr(
        supervisor.prune_checkpoints_task, "delay", lambda: sent.append("prune")
    )
    return sent


def test_workers_sharing_a_transport_queue_the_prune_once_an_hour(clock, queued):
    shared = MemoryTransport(replay=10)

    assert supervisor.prune_dispatch(shared) is True
    clock.t += 1
    assert supervisor.prune_dispatch(shared) is False  # another worker, a second on
    clock.t += 3598
    assert supervisor.prune_dispatch(shared) is False
    assert queued == ["prune"]

    clock.t += 2
    assert supervisor.prune_dispatch(shared) is True
    assert queued == ["prune", "prune"]


def test_a_prune_that_could_not_be_queued_is_tried_again_next_second(
    clock, monkeypatch
):
    shared = MemoryTransport(replay=10)

    def broker_down():
        raise ConnectionError("broker down")

    monkeypatch.setattr(supervisor.prune_checkpoints_task, "delay", broker_down)
    with pytest.raises(ConnectionError):
        supervisor.prune_dispatch(shared)

    sent = []
    monkeypatch.setattr(
        supervisor.prune_checkpoints_task, "delay", lambda: sent.append("prune")
    )
    clock.t += 1
    assert supervisor.prune_dispatch(shared) is True
    assert sent == ["prune"]


class Ticks:
    """A halt event for ``passes`` supervisor passes, each a second on ``clock``."""

    def __init__(self, clock, passes):
        self.clock = clock
        self.left = passes

    def wait(self, timeout):
        self.clock.t += timeout
        self.left -= 1
        return self.left < 0


@pytest.mark.django_db(transaction=True)  # the loop closes its connection each pass
def test_the_supervisor_loop_queues_the_prune_once_an_hour(
    clock, queued, monkeypatch, caplog
):
    shared = MemoryTransport(replay=10)
    monkeypatch.setattr(supervisor, "get_transport", lambda: shared)
    loop = supervisor.Supervisor()

    loop.halt = Ticks(clock, 60)
    loop.run()  # a minute of passes, here on this thread
    assert queued == ["prune"]

    clock.t += 3600
    loop.halt = Ticks(clock, 5)
    loop.run()
    assert queued == ["prune", "prune"]
    assert "supervisor pass failed" not in caplog.text
