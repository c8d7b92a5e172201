from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore

from simulations.transport import MemoryTransport, set_transport


@pytest.fixture(scope="session")
def embedded_worker(django_db_setup, django_db_blocker):
    """A real Celery worker on threads with the in-memory broker, as in embedded mode."""
    from simulations.embedded import EmbeddedWorker

    transport = MemoryTransport(replay=300)
    set_transport(transport)
    with django_db_blocker.unblock():
        # No supervisor: between tests the database is closed to threads.
        worker = EmbeddedWorker(concurrency=16).start(supervise=False)
    yield transport
    worker.stop()
    set_transport(None)


@pytest.fixture
def visitor_session(transactional_db):
    """Return (session key, visitor id) of an anonymous visitor."""
    session = SessionStore()
    session["visitor"] = "visitor-one"
    session.save()
    return session.session_key, "visitor-one"


@pytest.fixture
def live_runs(embedded_worker, transactional_db):
    """Stop every run a test leaves running, before its database goes away."""
    from simulations.models import Run
    from simulations.runs.constants import LIVE
    from simulations.runs.scheduler import get_scheduler

    yield embedded_worker
    Run.objects.filter(status__in=LIVE).update(status=Run.Status.STOPPED)
    get_scheduler().drop_all()
