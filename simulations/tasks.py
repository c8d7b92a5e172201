"""Celery tasks: thin adapters over the run service.

Services are imported inside the task bodies and the tasks are imported by the
services at module level (as ``drive_run_task``...), so there is no import cycle.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from django.db import close_old_connections

log = logging.getLogger(__name__)

_supervisor = None


@shared_task(
    name="simulations.drive_run", ignore_result=True, acks_late=False, time_limit=30
)
def drive_run(run_id: str) -> str:
    """Hand a run to this process's scheduler, which drives it from then on.

    Acknowledged on receipt on purpose: recovery from a killed worker comes from
    leases and the supervisor, not from the broker redelivering the message
    (with Redis that would take the visibility timeout, an hour).
    """
    from .runs.scheduler import get_scheduler

    outcome = get_scheduler().adopt(run_id)
    log.info("run %s: %s", run_id, outcome)
    return outcome


CURVE_TIME_LIMIT_S = 600  # a curve job still unfinished after this never will be


@shared_task(
    name="simulations.compute_curve",
    ignore_result=True,
    acks_late=True,
    time_limit=CURVE_TIME_LIMIT_S,
    soft_time_limit=CURVE_TIME_LIMIT_S - 60,
)
def compute_curve(job_id: str) -> str:
    """Compute a hit-ratio curve job (idempotent: only a queued job is run)."""
    from .curves import curve_run

    try:
        return curve_run(job_id)
    finally:
        close_old_connections()


@shared_task(
    name="simulations.prune_checkpoints",
    ignore_result=True,
    acks_late=True,
    time_limit=300,
)
def prune_checkpoints() -> int:
    """Clear the checkpoints of runs ended longer ago than the retention period.

    Queued by the supervisor about once an hour (no beat needed); idempotent, so a
    redelivered or doubled message only finds less to clear.
    """
    from .runs.retention import checkpoints_prune

    try:
        cleared = checkpoints_prune()
    finally:
        close_old_connections()
    log.info("pruned %d run checkpoints", cleared)
    return cleared


def start_supervisor():
    """Start this process's supervisor thread once."""
    from .runs.supervisor import Supervisor

    global _supervisor
    if _supervisor is None or not _supervisor.is_alive():
        _supervisor = Supervisor()
        _supervisor.start()
    return _supervisor


def stop_supervisor() -> None:
    global _supervisor
    if _supervisor is not None:
        _supervisor.halt.set()
        _supervisor = None


@worker_ready.connect
def _on_worker_ready(**kwargs) -> None:
    from .runs.scheduler import get_scheduler

    get_scheduler()
    start_supervisor()


@worker_shutting_down.connect
def _on_worker_shutting_down(**kwargs) -> None:
    """A warm shutdown: runs are checkpointed and their leases given up, so they
    resume on another worker within a second or two."""
    from .runs.scheduler import stop_scheduler

    stop_supervisor()
    stop_scheduler()
