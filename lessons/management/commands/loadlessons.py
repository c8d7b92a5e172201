"""Load the lesson files under lessons/content/ (idempotent)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons.services import CONTENT_DIR, LessonFileError, load_directory


class Command(BaseCommand):
    help = (
        "Create or update lessons from their files (lessons/content/*.md by default)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir", default=str(CONTENT_DIR), help="Directory of lesson files."
        )

    def handle(self, *args, **options):
        try:
            lessons = load_directory(Path(options["dir"]))
        except LessonFileError as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.stdout.write(f"loaded {len(lessons)} lesson(s)")
