"""Play every guided step of the lessons headless, each pressed as soon as it can be."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from lessons.playback import lessons_play
from lessons.services import LessonFileError


class Command(BaseCommand):
    help = (
        "Play the guided steps of every published lesson (or of the lessons named) "
        "in a headless run, each step pressed the moment the previous step's actions "
        "were sent; exit 1 naming every action an engine refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", metavar="SLUG", help="Lesson slugs.")
        parser.add_argument(
            "--seed", type=int, default=0, help="Random seed (default 0)."
        )

    def handle(self, *args, **options):
        try:
            played, missing = lessons_play(options["slugs"], seed=options["seed"])
        except LessonFileError as exc:
            raise CommandError(str(exc), returncode=2) from None
        if missing:
            raise CommandError("no lesson " + ", ".join(missing), returncode=2)
        if not played:
            raise CommandError(
                "no published lessons to play; load them with loadlessons",
                returncode=2,
            )
        refusals = [r for p in played for r in p.refusals]
        for p in played:
            outcome = f"{len(p.refusals)} refused" if p.refusals else "all taken"
            self.stdout.write(
                f"{p.lesson}: {p.steps} steps, {p.actions} actions, {outcome}"
            )
        if refusals:
            raise CommandError(
                f"{len(refusals)} action(s) refused:\n"
                + "\n".join(f"  {r}" for r in refusals),
                returncode=1,
            )
