"""Authoring services behind the admin: presets, status, order, history and files.

The admin, its forms and views are thin: they call these functions, which keep
every change in one transaction and record a LessonVersion whenever a lesson's
file text changes.
"""

from __future__ import annotations

import difflib
import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from django.db import transaction
from django.utils import timezone

from simulations.engines.base import Engine

from .models import Lesson, LessonVersion, Module, Question, Step, Term
from .services import (
    LessonFileError,
    lesson_save,
    lesson_to_dict,
    lesson_to_text,
    parse_lesson,
    version_record,
)

SOURCE = "lesson"
MAX_IMPORT_FILES = 200
MAX_FILE_BYTES = 1_000_000


def error_text(exc: LessonFileError, source: str = SOURCE) -> str:
    """Return a lesson error's message without the name of its source."""
    message = str(exc)
    prefix = f"{source}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


# Presets ------------------------------------------------------------------------


def preset_from_values(
    engine: type[Engine],
    values: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the preset to keep from the parameter values an author entered.

    A value of None means "the default". A value is kept when it differs from its
    default or was already in the preset, so saving an untouched form changes
    nothing and lesson files stay short. Raise ParamError naming the parameter.
    """
    previous = previous or {}
    given = {name: value for name, value in values.items() if value is not None}
    full = engine.validate_params(given)
    return {
        p.name: full[p.name]
        for p in engine.params
        if p.name in given and (full[p.name] != p.default or p.name in previous)
    }


# Publishing -----------------------------------------------------------------------


@transaction.atomic
def lessons_set_status(lessons: Iterable[Lesson], status: str, *, author=None) -> int:
    """Publish lessons or move them back to draft; return how many changed."""
    if status not in Lesson.Status.values:
        raise ValueError(f"status must be one of {', '.join(Lesson.Status.values)}")
    note = "published" if status == Lesson.Status.PUBLISHED else "moved back to draft"
    changed = 0
    for lesson in lessons:
        if lesson.status == status:
            continue
        lesson.status = status
        lesson.save(update_fields=["status", "updated_at"])
        version_record(lesson, author=author, note=note)
        changed += 1
    return changed


def lesson_parts_renumber(lesson: Lesson) -> None:
    """Number a lesson's steps and questions 0, 1, 2... in their current order."""
    for model in (Step, Question):
        parts = list(model.objects.filter(lesson=lesson).order_by("order", "id"))
        for index, part in enumerate(parts):
            if part.order != index:
                part.order = index
                part.save(update_fields=["order"])


@transaction.atomic
def lesson_record_edit(lesson: Lesson, *, author=None, note: str = "") -> None:
    """After an edit in the admin: tidy the parts' order and keep a version."""
    lesson_parts_renumber(lesson)
    version_record(lesson, author=author, note=note[:200])


@transaction.atomic
def module_save(module: Module, *, author=None) -> None:
    """Save a module; its title and order are in each lesson's file, so keep versions."""
    module.save()
    for lesson in module.lessons.select_related("module"):
        version_record(lesson, author=author, note=f"module {module.slug} changed")


# Arranging ----------------------------------------------------------------------------


class ArrangeError(ValueError):
    """A posted arrangement does not match the modules and lessons that exist."""


def _ids(value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ArrangeError(f"layout: {what} must be a list of ids")
    return value


@transaction.atomic
def lessons_arrange(layout: Any, *, author=None) -> int:
    """Order modules and their lessons as posted; return how many lessons moved.

    ``layout`` is ``[{"module": id, "lessons": [id, ...]}, ...]`` listing every
    module and every lesson exactly once. Orders are numbered from 1.
    """
    if not isinstance(layout, list) or not all(
        isinstance(item, dict) and set(item) == {"module", "lessons"} for item in layout
    ):
        raise ArrangeError(
            'layout: must be a list of {"module": id, "lessons": [ids]} entries'
        )
    module_ids = _ids([item["module"] for item in layout], "modules")
    lesson_ids = [i for item in layout for i in _ids(item["lessons"], "lessons")]
    modules = Module.objects.in_bulk()
    lessons = Lesson.objects.select_related("module").in_bulk()
    if sorted(module_ids) != sorted(modules):
        raise ArrangeError(
            "layout: the modules changed since the page was loaded (or an id is "
            "repeated or unknown); reload the page"
        )
    if sorted(lesson_ids) != sorted(lessons):
        raise ArrangeError(
            "layout: the lessons changed since the page was loaded (or an id is "
            "repeated or unknown); reload the page"
        )
    for position, item in enumerate(layout, start=1):
        module = modules[item["module"]]
        if module.order != position:
            module.order = position
            module.save(update_fields=["order"])
    moved = 0
    for item in layout:
        module = modules[item["module"]]
        for position, lesson_id in enumerate(item["lessons"], start=1):
            lesson = lessons[lesson_id]
            if lesson.module_id != module.pk or lesson.order != position:
                lesson.module = module
                lesson.order = position
                lesson.save(update_fields=["module", "order", "updated_at"])
            if version_record(lesson, author=author, note="rearranged"):
                moved += 1
    return moved


# History ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "hunk", "add", "del" or "same"
    text: str


def version_diff(old: str, new: str, *, context: int = 3) -> list[DiffLine]:
    """Return a unified diff of two lesson texts as typed lines (no file headers)."""
    lines = []
    for raw in difflib.unified_diff(
        old.splitlines(), new.splitlines(), lineterm="", n=context
    ):
        if raw.startswith(("---", "+++")) and not lines:
            continue
        if raw.startswith("@@"):
            lines.append(DiffLine("hunk", raw))
        elif raw.startswith("+"):
            lines.append(DiffLine("add", raw[1:]))
        elif raw.startswith("-"):
            lines.append(DiffLine("del", raw[1:]))
        else:
            lines.append(DiffLine("same", raw[1:]))
    return lines


def lesson_current_text(slug: str) -> str | None:
    """Return the file text of the lesson with this slug, or None if there is none."""
    lesson = Lesson.objects.select_related("module").filter(slug=slug).first()
    return lesson_to_text(lesson_to_dict(lesson)) if lesson else None


def version_label(version: LessonVersion) -> str:
    return timezone.localtime(version.created_at).strftime("%Y-%m-%d %H:%M:%S")


@transaction.atomic
def lesson_revert(version: LessonVersion, *, author=None) -> Lesson:
    """Bring a lesson back to a version's text, recording a new version.

    The lesson keeps its current status (a revert never hides a published lesson
    or publishes a draft: that is what Publish and Move back to draft are for). A
    lesson deleted since is created again. Raise LessonFileError when the text no
    longer validates (an engine changed its parameters, say).
    """
    data = parse_lesson(version.text, f"version of {version_label(version)}")
    lesson = version.lesson
    if lesson is None:
        lesson = Lesson.objects.filter(slug=data["slug"]).first()
    if lesson is not None:
        if lesson.slug != data["slug"]:
            if Lesson.objects.filter(slug=data["slug"]).exclude(pk=lesson.pk).exists():
                raise LessonFileError(
                    f"slug: another lesson now uses {data['slug']!r}", "slug"
                )
            lesson.slug = data["slug"]
            lesson.save(update_fields=["slug"])
        data["status"] = lesson.status
    return lesson_save(
        data, author=author, note=f"reverted to {version_label(version)}"
    )


# Files ----------------------------------------------------------------------------------


def lesson_file_text(lesson: Lesson) -> str:
    return lesson_to_text(lesson_to_dict(lesson))


def lessons_export_zip(lessons: Iterable[Lesson]) -> bytes:
    """Return a zip of ``<slug>.md`` files in the lesson file format."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for lesson in lessons:
            stamp = timezone.localtime(lesson.updated_at).timetuple()[:6]
            info = zipfile.ZipInfo(f"{lesson.slug}.md", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, lesson_file_text(lesson).encode("utf-8"))
    return buffer.getvalue()


class ImportFailed(ValueError):
    """Some uploaded files are not valid lessons; nothing was imported."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class ImportResult:
    lessons: list[Lesson] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _unpack(
    uploads: Iterable[tuple[str, bytes]], errors: list[str], skipped: list[str]
) -> list[tuple[str, bytes]]:
    files = []
    for name, content in uploads:
        if name.lower().endswith(".zip"):
            try:
                archive = zipfile.ZipFile(io.BytesIO(content))
            except zipfile.BadZipFile:
                errors.append(f"{name}: not a zip file")
                continue
            with archive:
                if len(archive.infolist()) > 10 * MAX_IMPORT_FILES:
                    errors.append(f"{name}: too many entries for a zip of lessons")
                    continue
                for info in archive.infolist():
                    path = PurePosixPath(info.filename)
                    shown = f"{name}/{info.filename}"
                    if info.is_dir() or any(
                        part.startswith((".", "__MACOSX")) for part in path.parts
                    ):
                        continue
                    if path.suffix.lower() != ".md":
                        skipped.append(shown)
                        continue
                    if info.file_size > MAX_FILE_BYTES:
                        errors.append(f"{shown}: larger than {MAX_FILE_BYTES} bytes")
                        continue
                    with archive.open(info) as handle:
                        files.append((shown, handle.read(MAX_FILE_BYTES + 1)))
        elif name.lower().endswith(".md"):
            files.append((name, content))
        else:
            errors.append(f"{name}: upload .md lesson files or a .zip of them")
    if len(files) > MAX_IMPORT_FILES:
        errors.append(f"at most {MAX_IMPORT_FILES} lesson files at once")
    return files


def lessons_import(
    uploads: Iterable[tuple[str, bytes]], *, author=None
) -> ImportResult:
    """Create or update lessons from uploaded ``.md`` files or zips; all or nothing.

    Raise ImportFailed listing every file at fault (file and field); glossary
    terms must already exist.
    """
    errors: list[str] = []
    result = ImportResult()
    parsed: list[tuple[str, dict[str, Any]]] = []
    for name, content in _unpack(uploads, errors, result.skipped):
        if len(content) > MAX_FILE_BYTES:
            errors.append(f"{name}: larger than {MAX_FILE_BYTES} bytes")
            continue
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            errors.append(f"{name}: not UTF-8 text")
            continue
        try:
            parsed.append((name, parse_lesson(text, name)))
        except LessonFileError as exc:
            errors.append(str(exc))
    if not parsed and not errors:
        errors.append("no lesson files (.md) were uploaded")
    known = set(Term.objects.values_list("slug", flat=True))
    seen: dict[str, str] = {}
    for name, data in parsed:
        if data["slug"] in seen:
            errors.append(
                f"{name}: slug: {data['slug']!r} is also in {seen[data['slug']]}"
            )
        seen[data["slug"]] = name
        missing = [t for t in data["glossary"] if t not in known]
        if missing:
            errors.append(
                f"{name}: glossary: no term {missing[0]!r}; add it under Terms first"
            )
    if errors:
        raise ImportFailed(errors)
    with transaction.atomic():
        for name, data in parsed:
            short = name.rsplit("/", 1)[-1]
            result.lessons.append(
                lesson_save(data, author=author, note=f"imported from {short}")
            )
    return result
