"""Write lessons from the database to files, in the format loadlessons reads."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons.models import Lesson
from lessons.services import CONTENT_DIR, export_directory


class Command(BaseCommand):
    help = "Export lessons to Markdown files with TOML front matter (lessons/content/ by default)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir", default=str(CONTENT_DIR), help="Directory to write into."
        )
        parser.add_argument(
            "slugs", nargs="*", help="Only these lessons (default: all)."
        )

    def handle(self, *args, **options):
        lessons = Lesson.objects.select_related("module")
        if options["slugs"]:
            lessons = lessons.filter(slug__in=options["slugs"])
            missing = sorted(
                set(options["slugs"]) - set(lessons.values_list("slug", flat=True))
            )
            if missing:
                raise CommandError(f"no lesson {missing[0]!r}", returncode=2)
        paths = export_directory(Path(options["dir"]), lessons)
        self.stdout.write(f"wrote {len(paths)} lesson file(s) to {options['dir']}")
