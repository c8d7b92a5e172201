"""Hand every live run that no worker holds, and that is not queued, to a worker;
queue the checkpoint prune once an hour."""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections

from ..models import Run
from ..tasks import prune_checkpoints as prune_checkpoints_task
from ..transport import Transport, get_transport
from .constants import LIVE
from .lifecycle import run_dispatch

log = logging.getLogger(__name__)

# The prune's claim lives in the transport, which every worker shares, so it is
# queued once an hour however many workers there are, and with no Celery beat.
# It borrows a run's queued claim under an id no run has.
PRUNE_CLAIM = "prune-checkpoints"
PRUNE_EVERY_S = 3600.0


def supervise_once(transport: Transport | None = None) -> list[str]:
    """Queue every live run without a lease or a queued claim; return their ids.

    A worker that dies stops renewing its leases; within a lease period its runs
    show up here and resume from their checkpoints elsewhere. Nothing relies on
    the broker redelivering a lost task, and a run waiting in the queue is not
    queued again: its claim lasts until a worker takes it.
    """
    transport = transport or get_transport()
    ids = [
        str(i) for i in Run.objects.filter(status__in=LIVE).values_list("id", flat=True)
    ]
    orphans = [r for r, held in transport.leased(ids).items() if not held]
    return [run_id for run_id in orphans if run_dispatch(run_id, transport)]


def prune_dispatch(transport: Transport | None = None) -> bool:
    """Queue the checkpoint prune unless a worker did within the hour; return
    whether this call queued it."""
    transport = transport or get_transport()
    if not transport.claim_dispatch(PRUNE_CLAIM, PRUNE_EVERY_S):
        return False
    try:
        prune_checkpoints_task.delay()
    except Exception:
        # Not queued: give the claim back, or no prune would run for an hour.
        transport.clear_dispatch(PRUNE_CLAIM)
        raise
    return True


class Supervisor(threading.Thread):
    """A daemon thread calling ``supervise_once`` and ``prune_dispatch`` every second."""

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(name="scalelab-supervisor", daemon=True)
        self.interval = interval
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            try:
                supervise_once()
                prune_dispatch()
            except Exception:  # a database or Redis hiccup: try again next second
                log.exception("supervisor pass failed")
            finally:
                close_old_connections()
