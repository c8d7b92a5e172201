"""Play every guided step of the lessons headless, each pressed as soon as it can be."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons.playback import lesson_play, lessons_play
from lessons.services import LessonFileError, parse_lesson


class Command(BaseCommand):
    help = (
        "Play the guided steps of every published lesson (or of the lessons named) "
        "in a headless run, each step pressed the moment the previous step's actions "
        "were sent (or, for a step with a prediction, once its figure was read); "
        "print the figures the predictions are compared with; exit 1 naming every "
        "action an engine refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", metavar="SLUG", help="Lesson slugs.")
        parser.add_argument(
            "--seed", type=int, default=0, help="Random seed (default 0)."
        )
        parser.add_argument(
            "--file",
            action="append",
            default=[],
            metavar="PATH",
            help="Play a lesson file instead of the saved lessons (repeatable).",
        )

    def handle(self, *args, **options):
        try:
            if options["file"]:
                played, missing = self.play_files(options["file"], options["seed"])
            else:
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
            for measurement in p.measurements:
                self.stdout.write(f"  {measurement}")
        if refusals:
            raise CommandError(
                f"{len(refusals)} action(s) refused:\n"
                + "\n".join(f"  {r}" for r in refusals),
                returncode=1,
            )

    def play_files(self, paths, seed):
        played = []
        for name in paths:
            path = Path(name)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"{name}: {exc.strerror}", returncode=2) from None
            played.append(lesson_play(parse_lesson(text, path.name), seed=seed))
        return played, []
