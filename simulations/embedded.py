"""Embedded mode: a Celery worker on a thread pool inside the web process.

The broker is kombu's in-memory transport, polled every 50 ms (its default of
once a second would delay every run's start by up to a second). The runs are
driven by the same scheduler as in a worker process.
"""

from __future__ import annotations

import threading

from celery.worker import WorkController
from django.conf import settings

from scalelab.celery import app

from . import tasks
from .runs import scheduler


class _Worker(WorkController):
    def __init__(self, *args, **kwargs) -> None:
        self.started = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer) -> None:
        self.started.set()


class EmbeddedWorker:
    """The worker thread, the scheduler and the supervisor, started and stopped together."""

    def __init__(self, concurrency: int | None = None) -> None:
        self.concurrency = concurrency or settings.SCALELAB["WORKER_THREADS"]
        self.worker: _Worker | None = None
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 20.0, supervise: bool = True) -> EmbeddedWorker:
        self.scheduler = scheduler.get_scheduler()
        self.worker = _Worker(
            app=app,
            concurrency=self.concurrency,
            pool="threads",
            hostname="embedded@scalelab",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel="WARNING",
        )
        self.thread = threading.Thread(
            target=self.worker.start, name="scalelab-worker", daemon=True
        )
        self.thread.start()
        if not self.worker.started.wait(timeout):
            raise RuntimeError("the embedded worker did not start")
        if supervise:
            tasks.start_supervisor()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        tasks.stop_supervisor()
        scheduler.stop_scheduler(timeout)
        if self.worker is not None:
            self.worker.stop(in_sighandler=False, exitcode=0)
        if self.thread is not None:
            self.thread.join(timeout)
