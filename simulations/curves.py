"""Hit ratio for every cache size: a background job with progress.

The work is one pass over a request stream (stack distances, see
``simulations.theory.caching.lru_curve``); the job records its progress so the page
can draw a progress bar, and its result so the page can draw the curve.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from .engines.base import Param
from .models import CurveJob
from .runs.admission import Caps, admit
from .runs.constants import MAX_SEED, limits
from .tasks import CURVE_TIME_LIMIT_S
from .tasks import compute_curve as compute_curve_task
from .theory.caching import (
    che_hit_ratio,
    curve_sizes,
    hit_ratio_curve,
    zipf_probabilities,
)
from .validation import Object, Scalar, validate

PARAMS = (
    Param(
        "keys",
        "int",
        10_000,
        10,
        1_000_000,
        unit="keys",
        label="Catalogue size",
        help="How many distinct objects are read.",
    ),
    Param(
        "zipf_s",
        "float",
        0.9,
        0.0,
        2.5,
        step=0.05,
        label="Popularity skew (Zipf s)",
        help="0 is uniform; higher means a few keys get most reads.",
    ),
    Param(
        "requests",
        "int",
        500_000,
        10_000,
        2_000_000,
        unit="reads",
        label="Reads",
        help="Length of the request stream; use many more reads than keys.",
    ),
    Param(
        "seed", "int", 1, 0, MAX_SEED, label="Seed", help="The random stream to use."
    ),
)
THEORY_MAX_KEYS = 20_000  # Che's approximation per size costs O(keys) each


BODY = Object("body", tuple(Scalar(p) for p in PARAMS), label="the request body")


def curve_validate(raw: Any) -> dict[str, Any]:
    """Return every parameter of a curve, defaults filled in, or raise EngineError."""
    return validate(BODY, raw)


def curve_caps() -> Caps:
    quota = limits()
    return Caps(
        field="curve",
        noun="curve jobs being computed",
        per_visitor=1,
        per_address=quota["ADDRESS_CURVE_JOBS"],
        site=quota["MAX_CURVE_JOBS"],
        visitor_message="a curve of yours is still being computed: wait for it to finish",
        site_retry_s=10,
    )


# A job queued or computing for longer than its task may run, plus a minute to be
# picked up, was lost (its worker killed, or its message lost with Redis): it fails
# and stops holding its visitor's place.
LOST_AFTER_S = CURVE_TIME_LIMIT_S + 60
LOST = "lost: no worker finished it in time; start it again"


def curves_fail_lost() -> int:
    """Mark the lost jobs failed; return how many there were."""
    now = timezone.now()
    return CurveJob.objects.filter(
        status__in=[CurveJob.Status.QUEUED, CurveJob.Status.RUNNING],
        created_at__lt=now - timedelta(seconds=LOST_AFTER_S),
    ).update(status=CurveJob.Status.FAILED, error=LOST, finished_at=now)


def curve_create(
    raw: Any, *, owner=None, visitor: str = "", client: str = ""
) -> CurveJob:
    """Validate and queue a curve job, admitted as runs are (``runs.admission``)."""
    params = curve_validate(raw)
    with transaction.atomic():
        curves_fail_lost()
        admit(
            CurveJob.objects.filter(
                status__in=[CurveJob.Status.QUEUED, CurveJob.Status.RUNNING]
            ),
            curve_caps(),
            owner=owner,
            visitor=visitor,
            client=client,
        )
        job = CurveJob.objects.create(
            params=params,
            visitor=visitor,
            client=client,
            owner=owner if owner is not None and owner.is_authenticated else None,
        )
        transaction.on_commit(lambda: compute_curve_task.delay(str(job.id)))
    return job


def curve_run(job_id: str) -> str:
    """Compute a queued job, recording progress at most four times a second."""
    claimed = CurveJob.objects.filter(id=job_id, status=CurveJob.Status.QUEUED).update(
        status=CurveJob.Status.RUNNING
    )
    if not claimed:
        return "not queued"
    job = CurveJob.objects.get(id=job_id)
    p = job.params
    sizes = curve_sizes(p["keys"])
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.25 or done == total:
            last[0] = now
            CurveJob.objects.filter(id=job_id).update(progress=done / total)

    try:
        ratios = hit_ratio_curve(
            p["keys"], p["zipf_s"], p["requests"], p["seed"], sizes, progress
        )
    except Exception as exc:  # recorded for the page; the worker goes on
        CurveJob.objects.filter(id=job_id).update(
            status=CurveJob.Status.FAILED,
            error=str(exc)[:300],
            finished_at=timezone.now(),
        )
        raise
    result: dict[str, Any] = {"sizes": sizes, "hit_ratios": ratios}
    if p["keys"] <= THEORY_MAX_KEYS:
        probabilities = zipf_probabilities(p["keys"], p["zipf_s"])
        result["che"] = [che_hit_ratio(probabilities, size) for size in sizes]
    CurveJob.objects.filter(id=job_id).update(
        status=CurveJob.Status.DONE,
        progress=1.0,
        result=result,
        finished_at=timezone.now(),
    )
    return "done"


def curve_status(job: CurveJob) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "params": job.params,
        "status": job.status,
        "progress": round(job.progress, 4) if math.isfinite(job.progress) else 0.0,
        "result": job.result,
        "error": job.error,
    }
