"""Celery tasks: thin adapters over the run service."""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from django.db import close_old_connections

from . import runs

log = logging.getLogger(__name__)

# Set when the worker shuts down warm: drivers checkpoint, release their leases
# and return, and the runs resume on another worker within a second or two.
STOPPING = threading.Event()
_supervisor: runs.Supervisor | None = None


@shared_task(name="simulations.drive_run", ignore_result=True, acks_late=False)
def drive_run(run_id: str) -> str:
    """Drive a run until it ends or this worker loses it.

    Acknowledged on receipt on purpose: recovery from a killed worker comes from
    leases and the supervisor, not from the broker redelivering the message
    (with Redis that would take the visibility timeout, an hour).
    """
    try:
        outcome = runs.RunDriver(run_id, stopping=STOPPING).drive()
    finally:
        close_old_connections()
    log.info("run %s: %s", run_id, outcome)
    return outcome


@shared_task(
    name="simulations.compute_curve",
    ignore_result=True,
    acks_late=True,
    time_limit=600,
    soft_time_limit=540,
)
def compute_curve(job_id: str) -> str:
    """Compute a hit-ratio curve job (idempotent: only a queued job is run)."""
    from . import curves

    try:
        return curves.curve_run(job_id)
    finally:
        close_old_connections()


def start_supervisor() -> runs.Supervisor:
    """Start this process's supervisor thread once."""
    global _supervisor
    if _supervisor is None or not _supervisor.is_alive():
        _supervisor = runs.Supervisor()
        _supervisor.start()
    return _supervisor


@worker_ready.connect
def _on_worker_ready(**kwargs) -> None:
    STOPPING.clear()
    start_supervisor()


@worker_shutting_down.connect
def _on_worker_shutting_down(**kwargs) -> None:
    STOPPING.set()
