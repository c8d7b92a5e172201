"""Authoring services behind the admin: presets, status, order, history and files.

The admin, its forms and views are thin: they call these functions, which keep
every change in one transaction and record a LessonVersion whenever a lesson's
file text changes.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import secrets
import tomllib
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from django.core.cache import cache
from django.db import models, transaction
from django.utils import timezone

from simulations.engines.base import Engine

from .models import Lesson, LessonVersion, Module, Question, Step, Term
from .services import (
    FENCE,
    LessonFileError,
    lesson_save,
    lesson_to_dict,
    lesson_to_text,
    parse_lesson,
    version_record,
)

SOURCE = "lesson"
# Import limits. Zip entries are read only once the central directory shows they
# fit these, so a small zip cannot unpack to gigabytes.
MAX_IMPORT_FILES = 200  # lesson files in one import
MAX_FILE_BYTES = 1_000_000  # one lesson file, uncompressed
MAX_IMPORT_BYTES = 10_000_000  # every lesson file of one import, uncompressed
MAX_ZIP_ENTRIES = 10 * MAX_IMPORT_FILES  # entries of one zip, lesson files or not
MAX_COMPRESSION_RATIO = 50  # a zip entry's size over its compressed size; text ~3
# The methods exports and the usual zip tools write; LZMA and bzip2 headers can ask
# the decompressor for far more memory than the file they hold.
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_ENCRYPTED = 0x1 | 0x40  # general purpose flags: traditional and strong encryption
_PATCHED = 0x20
IMPORT_PENDING_S = 3600  # how long an import waits for its module changes
MAX_NAME = 200  # characters of a file's name that messages show


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
    longer validates (an engine changed its parameters, say, or a text is longer
    than its column).
    """
    source = f"version of {version_label(version)}"
    data = parse_lesson(version.text, source)
    # A version may predate the column checks (SQLite stores any length).
    if too_long := _too_long(data):
        raise LessonFileError(f"{source}: {too_long[0]}", too_long[0].split(":")[0])
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


@dataclass(frozen=True)
class ModuleChange:
    """A module an import retitles or moves, and its lessons that are not imported.

    Their files change with it (a lesson's file holds its module's title and order),
    so the change is shown, and confirmed, before anything is saved.
    """

    slug: str
    title: str
    new_title: str
    order: int
    new_order: int
    lessons: tuple[str, ...]  # titles of its other lessons


@dataclass
class ImportResult:
    """What an import saved, or, with ``confirmation`` set, what waits for it.

    A result with a ``confirmation`` saved nothing: importing ``files`` again with
    ``confirm=confirmation`` applies ``module_changes``, if they are still the same.
    """

    lessons: list[Lesson] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    module_changes: list[ModuleChange] = field(default_factory=list)
    confirmation: str = ""
    files: list[tuple[str, bytes]] = field(default_factory=list)


def _shown(name: str) -> str:
    """Return a file's name, or its end (file name and suffix) if it is long."""
    return name if len(name) <= MAX_NAME else "..." + name[-MAX_NAME:]


def _entry_problem(info: zipfile.ZipInfo) -> str:
    """Say why a zip entry cannot be imported, from its directory record alone."""
    if info.flag_bits & _ENCRYPTED:
        return "is encrypted; zip the lessons without a password"
    if info.compress_type not in ZIP_METHODS or info.flag_bits & _PATCHED:
        return (
            f"is compressed with method {info.compress_type}, which cannot be read; "
            "compression must be one of " + ", ".join(ZIP_METHODS.values())
        )
    if info.file_size > MAX_FILE_BYTES:
        return (
            f"is {info.file_size} bytes uncompressed; a lesson file may have at "
            f"most {MAX_FILE_BYTES}"
        )
    if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        ratio = info.file_size // max(info.compress_size, 1)
        return (
            f"is compressed {ratio} to 1; a lesson file may be compressed at most "
            f"{MAX_COMPRESSION_RATIO} to 1"
        )
    return ""


def _lesson_entries(
    name: str, archive: zipfile.ZipFile, errors: list[str], skipped: list[str]
) -> list[zipfile.ZipInfo]:
    """Return a zip's lesson entries, or [] after naming what is wrong with them."""
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        errors.append(
            f"{name}: holds {len(infos)} entries; a zip of lessons may hold at "
            f"most {MAX_ZIP_ENTRIES}"
        )
        return []
    entries, problems = [], []
    for info in infos:
        path = PurePosixPath(info.filename)
        # A directory's name ends with "/" (ZipInfo.is_dir fails on an empty name).
        if info.filename.endswith("/") or any(
            part.startswith((".", "__MACOSX")) for part in path.parts
        ):
            continue
        shown = f"{name}/{_shown(info.filename)}"
        if path.suffix.lower() != ".md":
            skipped.append(shown)
        elif problem := _entry_problem(info):
            problems.append(f"{shown}: {problem}")
        else:
            entries.append(info)
    errors.extend(problems)
    return [] if problems else entries


def _read_entries(
    name: str, archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo]
) -> tuple[list[tuple[str, bytes]], list[str]]:
    files, errors = [], []
    for info in entries:
        shown = f"{name}/{_shown(info.filename)}"
        try:
            with archive.open(info) as handle:
                files.append((shown, handle.read(MAX_FILE_BYTES + 1)))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            errors.append(f"{shown}: the zip is damaged ({exc}); zip the lessons again")
    return files, errors


def _unpack(
    uploads: Iterable[tuple[str, bytes]], errors: list[str], skipped: list[str]
) -> list[tuple[str, bytes]]:
    files: list[tuple[str, bytes]] = []
    for name, content in uploads:
        name = _shown(name)
        if name.lower().endswith(".md"):
            files.append((name, content))
            continue
        if not name.lower().endswith(".zip"):
            errors.append(f"{name}: upload .md lesson files or a .zip of them")
            continue
        try:
            archive = zipfile.ZipFile(io.BytesIO(content))
        except (zipfile.BadZipFile, EOFError, OSError, ValueError):
            errors.append(f"{name}: not a zip file, or a damaged one")
            continue
        except NotImplementedError as exc:  # a later version of the format
            errors.append(f"{name}: cannot be read ({exc}); zip the lessons again")
            continue
        with archive:
            entries = _lesson_entries(name, archive, errors, skipped)
            held = sum(len(content) for _, content in files)
            size = sum(info.file_size for info in entries)
            if len(files) + len(entries) > MAX_IMPORT_FILES:
                errors.append(
                    f"{name}: holds {len(entries)} lesson files; an import may have "
                    f"at most {MAX_IMPORT_FILES}"
                )
            elif held + size > MAX_IMPORT_BYTES:
                errors.append(
                    f"{name}: its lesson files come to {size} bytes uncompressed; "
                    f"an import may have at most {MAX_IMPORT_BYTES} bytes of them"
                )
            else:
                read, damaged = _read_entries(name, archive, entries)
                files += read
                errors += damaged
    if len(files) > MAX_IMPORT_FILES:
        errors.append(f"at most {MAX_IMPORT_FILES} lesson files at once")
    elif sum(len(content) for _, content in files) > MAX_IMPORT_BYTES:
        errors.append(f"at most {MAX_IMPORT_BYTES} bytes of lesson files at once")
    return files


def _max_lengths(model) -> dict[str, int]:
    return {
        f.name: f.max_length
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField) and f.max_length
    }


def _too_long(data: dict[str, Any]) -> list[str]:
    """Name each text of a lesson longer than the column that would store it.

    SQLite stores any length (and the admin then refuses to save the lesson);
    PostgreSQL refuses the whole import with an error.
    """
    module = _max_lengths(Module)
    own = {
        **_max_lengths(Lesson),
        "module": module["slug"],
        "module_title": module["title"],
    }
    texts = [("", data, own)]
    for key, model in (("steps", Step), ("questions", Question)):
        part_limits = _max_lengths(model)
        texts += [
            (f"{key}[{i}].", part, part_limits) for i, part in enumerate(data[key])
        ]
    return [
        f"{where}{name}: must be at most {limit} characters; it has {len(part[name])}"
        for where, part, limits in texts
        for name, limit in limits.items()
        if len(part.get(name, "")) > limit
    ]


def _front_matter_names(text: str) -> set[str]:
    """Return the names the front matter of a valid lesson file sets."""
    lines = text.splitlines(keepends=True)
    end = next(i for i in range(1, len(lines)) if lines[i].strip() == FENCE)
    return set(tomllib.loads("".join(lines[1:end])))


def _parse(
    files: list[tuple[str, bytes]], errors: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    parsed: list[tuple[str, dict[str, Any]]] = []
    for name, content in files:
        if len(content) > MAX_FILE_BYTES:
            errors.append(f"{name}: larger than {MAX_FILE_BYTES} bytes")
            continue
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            errors.append(f"{name}: not UTF-8 text")
            continue
        try:
            data = parse_lesson(text, name)
        except LessonFileError as exc:
            errors.append(str(exc))
            continue
        errors += [f"{name}: {problem}" for problem in _too_long(data)]
        if "status" not in _front_matter_names(text):
            data["status"] = None  # the lesson's current one, or draft
        parsed.append((name, data))
    return parsed


def _check_together(
    parsed: list[tuple[str, dict[str, Any]]], errors: list[str]
) -> None:
    known = set(Term.objects.values_list("slug", flat=True))
    seen: dict[str, str] = {}
    modules: dict[str, tuple[str, dict[str, Any]]] = {}
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
        first_name, first = modules.setdefault(data["module"], (name, data))
        for key in ("module_title", "module_order"):
            if data[key] != first[key]:
                errors.append(
                    f"{name}: {key}: {data[key]!r} differs from {first[key]!r} in "
                    f"{first_name}, for the same module {data['module']!r}"
                )


def _module_changes(parsed: list[tuple[str, dict[str, Any]]]) -> list[ModuleChange]:
    """Return the modules the files retitle or move that hold other lessons too."""
    wanted = {data["module"]: data for _, data in parsed}
    imported = {data["slug"] for _, data in parsed}
    changes = []
    for module in Module.objects.filter(slug__in=wanted).prefetch_related("lessons"):
        data = wanted[module.slug]
        others = tuple(
            lesson.title
            for lesson in module.lessons.all()
            if lesson.slug not in imported
        )
        if others and (module.title, module.order) != (
            data["module_title"],
            data["module_order"],
        ):
            changes.append(
                ModuleChange(
                    module.slug,
                    module.title,
                    data["module_title"],
                    module.order,
                    data["module_order"],
                    others,
                )
            )
    return changes


def _confirmation(changes: list[ModuleChange]) -> str:
    text = json.dumps([asdict(change) for change in changes], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _note(text: str) -> str:
    return text[: LessonVersion._meta.get_field("note").max_length]


def lessons_import(
    uploads: Iterable[tuple[str, bytes]], *, author=None, confirm: str = ""
) -> ImportResult:
    """Create or update lessons from uploaded ``.md`` files or zips; all or nothing.

    Raise ImportFailed listing every file at fault (file and field); glossary
    terms must already exist. A file without a status keeps the lesson's current
    one (a new lesson is a draft). When the files retitle or move a module that
    holds other lessons too, nothing is saved unless ``confirm`` is the
    confirmation of those very changes (see ImportResult); once saved, each of
    those lessons records the change in its history.
    """
    errors: list[str] = []
    result = ImportResult()
    files = _unpack(uploads, errors, result.skipped)
    parsed = _parse(files, errors)
    if not parsed and not errors:
        errors.append("no lesson files (.md) were uploaded")
    _check_together(parsed, errors)
    if errors:
        raise ImportFailed(errors)
    result.module_changes = _module_changes(parsed)
    if result.module_changes and confirm != _confirmation(result.module_changes):
        result.confirmation = _confirmation(result.module_changes)
        result.files = files
        return result
    with transaction.atomic():
        statuses = dict(
            Lesson.objects.filter(slug__in=[d["slug"] for _, d in parsed]).values_list(
                "slug", "status"
            )
        )
        for name, data in parsed:
            if data["status"] is None:
                data["status"] = statuses.get(data["slug"], Lesson.Status.DRAFT)
            short = name.rsplit("/", 1)[-1]
            result.lessons.append(
                lesson_save(data, author=author, note=_note(f"imported from {short}"))
            )
        imported = [lesson.pk for lesson in result.lessons]
        for change in result.module_changes:
            others = Lesson.objects.filter(module__slug=change.slug).exclude(
                pk__in=imported
            )
            for lesson in others.select_related("module"):
                version_record(
                    lesson,
                    author=author,
                    note=_note(f"module {change.slug} changed by an import"),
                )
    return result


def _pending_key(user, token: str) -> str:
    return f"lessons:import:{user.pk}:{token}"


def import_hold(files: list[tuple[str, bytes]], *, user) -> str:
    """Keep an import's files while its module changes wait; return their token.

    They are kept in the shared cache, so whichever web process serves the
    confirmation finds them, for ``IMPORT_PENDING_S``.
    """
    token = secrets.token_urlsafe(16)
    cache.set(_pending_key(user, token), files, IMPORT_PENDING_S)
    return token


def import_held(token: str, *, user) -> list[tuple[str, bytes]] | None:
    """Return the files ``user`` holds under ``token``, or None if they are gone."""
    return cache.get(_pending_key(user, token))


def import_release(token: str, *, user) -> None:
    cache.delete(_pending_key(user, token))
