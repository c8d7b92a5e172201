"""Pruning what stopped runs no longer need: their checkpoints, not their rows.

A stopped or failed run is never resumed, so its sealed state is dead weight (often
the largest column of the table). Its row stays: kind, parameters, seed, status,
reason and times are what the admin and a run's status page show.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from ..models import Run
from .constants import limits

ENDED = (Run.Status.STOPPED, Run.Status.FAILED)
MAX_RETENTION_H = 8760  # a year; the bound SCALELAB_CHECKPOINT_RETENTION_H accepts


def checkpoints_prune(*, older_than: timedelta | None = None, batch: int = 500) -> int:
    """Clear the checkpoints of runs that ended more than ``older_than`` ago.

    ``older_than`` defaults to ``SCALELAB_CHECKPOINT_RETENTION_H``; zero clears every
    ended run's checkpoint. Return how many were cleared. Live runs are never
    touched, whatever their age.
    """
    if older_than is None:
        older_than = timedelta(hours=limits()["CHECKPOINT_RETENTION_H"])
    if older_than < timedelta(0):
        raise ValueError(f"older_than must not be negative; got {older_than}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}")
    due = Run.objects.filter(
        status__in=ENDED,
        ended_at__lte=timezone.now() - older_than,
        checkpoint__isnull=False,
    ).order_by()
    cleared = 0
    while True:
        # One short statement per batch: on SQLite a single UPDATE over a large
        # table would hold the write lock that every worker's checkpoints wait on.
        ids = list(due.values_list("id", flat=True)[:batch])
        if not ids:
            return cleared
        cleared += due.filter(id__in=ids).update(checkpoint=None)
        if len(ids) < batch:
            return cleared
