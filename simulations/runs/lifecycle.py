"""Creating runs, reading their status, and handing them to a worker."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction

from ..models import Run
from ..tasks import drive_run as drive_run_task
from ..transport import Transport, get_transport
from ..validation import RUN_CREATE, validate
from .constants import LIVE, MAX_SEED, limits
from .errors import QuotaError

# A run handed to the queue carries this claim until a worker takes it, so the
# supervisor does not send it again while it waits. The claim expires in case the
# message is lost with a worker killed between receiving it and taking the run.
QUEUED_CLAIM_S = 60.0


def run_create(
    *,
    kind: Any,
    params: Any = None,
    seed: Any = None,
    owner=None,
    visitor: str = "",
    lesson: str = "",
) -> Run:
    """Validate and create a run, then hand it to a worker once committed.

    Raise EngineError naming the field (``params.capacity``) on bad input.
    """
    fields = validate(
        RUN_CREATE, {"kind": kind, "params": params, "seed": seed, "lesson": lesson}
    )
    kind, values, lesson = fields["kind"], fields["params"], fields["lesson"]
    seed = fields["seed"] if fields["seed"] is not None else secrets.randbelow(MAX_SEED)
    quota = limits()["RUNS_PER_VISITOR"]
    with transaction.atomic():
        if live_runs_of(owner, visitor).count() >= quota:
            raise QuotaError(
                "runs",
                f"at most {quota} live runs per visitor: stop one of yours to start another",
            )
        run = Run.objects.create(
            kind=kind,
            params=values,
            seed=seed,
            visitor=visitor,
            lesson=lesson[:100],
            owner=owner if owner is not None and owner.is_authenticated else None,
        )
        transaction.on_commit(lambda: run_dispatch(str(run.id)))
    return run


def live_runs_of(owner, visitor: str):
    """Return the live runs of a signed-in ``owner``, or else of ``visitor``."""
    runs = Run.objects.filter(status__in=LIVE)
    if owner is not None and owner.is_authenticated:
        return runs.filter(owner=owner)
    return runs.filter(owner__isnull=True, visitor=visitor)


def run_status(run: Run) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "kind": run.kind,
        "params": run.params,
        "seed": run.seed,
        "status": run.status,
        "speed": run.speed,
        "created_at": run.created_at.isoformat(),
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "stop_reason": run.stop_reason,
        "last_seq": run.last_seq,
        "ws_url": f"/ws/runs/{run.id}/",
    }


def run_dispatch(run_id: str, transport: Transport | None = None) -> bool:
    """Queue ``run_id`` for a worker once; return False if it is already queued."""
    if not (transport or get_transport()).claim_dispatch(run_id, QUEUED_CLAIM_S):
        return False
    drive_run_task.delay(run_id)
    return True
