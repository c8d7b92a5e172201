"""Creating runs, reading their status, and handing them to a worker."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.db import transaction

from ..engines.base import EngineError
from ..models import Run, RunControl
from ..tasks import drive_run as drive_run_task
from ..transport import Transport, get_transport
from ..validation import RUN_CREATE, validate
from .admission import Caps, admit
from .constants import LIVE, MAX_SEED, limits
from .replay import MAX_TIMELINE, TRUNCATED

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
    client: str = "",
    client_cap: int | None = None,
    lesson: str = "",
    moment: Any = None,
) -> Run:
    """Validate and create a run, then hand it to a worker once committed.

    With ``moment`` ({"run": ID, "at": FRAME}) the new run starts as that run was
    at that frame: same engine, seed and settings, its controls up to then copied
    into the new run's timeline, which its worker replays before going on live.

    Raise EngineError naming the field (``params.capacity``) on bad input,
    QuotaError when the visitor has as many live runs as allowed, and LimitError
    when their address or the whole site has (``admission``).
    """
    fields = validate(
        RUN_CREATE,
        {
            "kind": kind,
            "params": params,
            "seed": seed,
            "lesson": lesson,
            "moment": moment,
        },
    )
    kind, values, lesson = fields["kind"], fields["params"], fields["lesson"]
    seed = fields["seed"] if fields["seed"] is not None else secrets.randbelow(MAX_SEED)
    cfg = limits()
    origin = {"params": values, "speed": 1.0, "frame_hz": cfg["FRAME_HZ"]}
    source, at = None, 0
    if fields["moment"] is not None:
        source, at = _moment_source(kind, fields["moment"])
        seed = source.seed
        values = source.origin["params"]
        origin = {**source.origin, "moment": at, "from": str(source.id)}
    with transaction.atomic():
        admit(
            Run.objects.filter(status__in=LIVE),
            run_caps(),
            owner=owner,
            visitor=visitor,
            client=client,
            client_cap=client_cap,
        )
        run = Run.objects.create(
            kind=kind,
            params=values,
            seed=seed,
            visitor=visitor,
            client=client,
            lesson=lesson[:100],
            owner=owner if owner is not None and owner.is_authenticated else None,
            origin=origin,
            last_seq=at,
        )
        if source is not None:
            RunControl.objects.bulk_create(
                RunControl(run=run, n=c.n, seq=c.seq, t=c.t, control=c.control)
                for c in RunControl.objects.filter(run=source, seq__lt=at).order_by("n")
            )
        transaction.on_commit(lambda: run_dispatch(str(run.id)))
    return run


def _moment_source(kind: str, moment: dict[str, Any]) -> tuple[Run, int]:
    """Return the run a moment link names and its frame, or raise EngineError."""
    try:
        run_id = uuid.UUID(moment["run"])
    except ValueError:
        raise EngineError("moment.run", "moment.run must be a run's id") from None
    source = Run.objects.filter(id=run_id).first()
    if source is None:
        raise EngineError("moment.run", "no run has that id: it may have been deleted")
    if source.kind != kind:
        raise EngineError(
            "moment.run", f"that run is of the {source.kind} engine, not {kind}"
        )
    if "params" not in (source.origin or {}):
        raise EngineError(
            "moment.run", "that run was made before runs kept their timeline"
        )
    # A live run's frames go on past its last checkpoint; none of them holds a
    # control the database lacks (a control waits for its checkpoint).
    last = source.last_seq
    if source.is_live:
        last += limits()["FRAME_HZ"] * 120
    at = moment["at"]
    if at > last:
        raise EngineError(
            "moment.at", f"moment.at must be a frame that run has made: 0 to {last}"
        )
    if RunControl.objects.filter(
        run=source, seq__lt=at, control__type=TRUNCATED
    ).exists():
        raise EngineError(
            "moment.at",
            f"that run made more than {MAX_TIMELINE} changes before this moment, "
            "and only the first ones were kept: it cannot be replayed that far",
        )
    return source, at


def run_caps() -> Caps:
    quota = limits()
    return Caps(
        field="runs",
        noun="live runs",
        per_visitor=quota["RUNS_PER_VISITOR"],
        per_address=quota["ADDRESS_LIVE_RUNS"],
        site=quota["MAX_LIVE_RUNS"],
        visitor_message=(
            f"at most {quota['RUNS_PER_VISITOR']} live runs per visitor: "
            "stop one of yours to start another"
        ),
        site_retry_s=30,
        reclaim=True,
    )


def visitor_live_run(owner, visitor: str, kind: str, lesson: str = "") -> str | None:
    """The id of the newest live run of this visitor for this page, if any.

    A lesson (or sandbox) page that is reloaded, or opened again, attaches to it
    instead of starting another.
    """
    runs = Run.objects.filter(status__in=LIVE, kind=kind, lesson=lesson[:100])
    if owner is not None and owner.is_authenticated:
        runs = runs.filter(owner=owner)
    elif visitor:
        runs = runs.filter(owner__isnull=True, visitor=visitor)
    else:
        return None
    run_id = runs.order_by("-created_at").values_list("id", flat=True).first()
    return str(run_id) if run_id else None


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
