"""Clear the checkpoints of runs that ended longer ago than the retention period."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from simulations.runs.constants import limits
from simulations.runs.retention import MAX_RETENTION_H, checkpoints_prune


class Command(BaseCommand):
    help = (
        "Clear the saved state of stopped and failed runs that ended longer ago than "
        "the retention period; their rows are kept. Workers also do this hourly."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-hours",
            metavar="N",
            help=(
                f"Hours since a run ended, 0 to {MAX_RETENTION_H} "
                "(default SCALELAB_CHECKPOINT_RETENTION_H)."
            ),
        )

    def handle(self, *args, **options):
        raw = options["older_than_hours"]
        hours = limits()["CHECKPOINT_RETENTION_H"] if raw is None else parse_hours(raw)
        cleared = checkpoints_prune(older_than=timedelta(hours=hours))
        self.stdout.write(
            f"Cleared {plural(cleared, 'checkpoint')} of runs that ended more than "
            f"{plural(hours, 'hour')} ago; their rows are kept."
        )


def parse_hours(raw) -> int:
    try:
        hours = int(str(raw).strip())
    except ValueError:
        hours = -1
    if not 0 <= hours <= MAX_RETENTION_H:
        raise CommandError(
            f"--older-than-hours must be an integer from 0 to {MAX_RETENTION_H}; "
            f"got {raw!r}"
        )
    return hours


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
