"""Lesson content: parsing lesson files, loading them, rendering Markdown."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import markdown
import nh3
from django.db import transaction

from simulations.engines import get_engine
from simulations.engines.base import EngineError

from .models import Lesson, Module

CONTENT_DIR = Path(__file__).resolve().parent / "content"
FENCE = "+++"

_SVG_TAGS = {
    "svg",
    "g",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "path",
    "text",
    "tspan",
    "title",
    "desc",
    "defs",
    "marker",
    "use",
}
_SVG_ATTRS = {
    "viewBox",
    "width",
    "height",
    "x",
    "y",
    "x1",
    "y1",
    "x2",
    "y2",
    "cx",
    "cy",
    "r",
    "rx",
    "ry",
    "d",
    "points",
    "fill",
    "stroke",
    "stroke-width",
    "stroke-dasharray",
    "font-size",
    "text-anchor",
    "dominant-baseline",
    "transform",
    "marker-end",
    "markerWidth",
    "markerHeight",
    "refX",
    "refY",
    "orient",
    "role",
    "aria-label",
    "aria-labelledby",
    "focusable",
    "class",
    "id",
    "href",
}
ALLOWED_TAGS = (
    set(nh3.ALLOWED_TAGS)
    | {
        "figure",
        "figcaption",
        "details",
        "summary",
        "kbd",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "caption",
        "span",
        "div",
    }
    | _SVG_TAGS
)
ALLOWED_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {
        "class",
        "id",
        "role",
        "aria-label",
        "aria-hidden",
        "aria-describedby",
        "title",
        "lang",
    },
    "th": {"scope", "class"},
    "td": {"class"},
    **dict.fromkeys(_SVG_TAGS, _SVG_ATTRS),
}


class LessonFileError(ValueError):
    """A lesson file is malformed; the message names the file and the field."""


def render_markdown(text: str) -> str:
    """Return sanitised HTML for lesson Markdown."""
    html = markdown.markdown(
        text, extensions=["tables", "fenced_code", "sane_lists", "attr_list"]
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        link_rel="noopener noreferrer",
    )


def parse_lesson(text: str, source: str = "lesson") -> dict[str, Any]:
    """Split a lesson file into its TOML front matter and Markdown body."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != FENCE:
        raise LessonFileError(
            f"{source}: must start with a {FENCE} line opening the front matter"
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == FENCE)
    except StopIteration:
        raise LessonFileError(
            f"{source}: the front matter has no closing {FENCE} line"
        ) from None
    try:
        meta = tomllib.loads("".join(lines[1:end]))
    except tomllib.TOMLDecodeError as exc:
        raise LessonFileError(
            f"{source}: front matter is not valid TOML: {exc}"
        ) from None
    meta["body"] = "".join(lines[end + 1 :]).strip() + "\n"
    return validate_lesson(meta, source)


REQUIRED = ("slug", "title", "module", "module_title", "engine")


def validate_lesson(meta: dict[str, Any], source: str) -> dict[str, Any]:
    """Check a lesson's fields against its engine; raise LessonFileError naming the field."""
    for name in REQUIRED:
        if not isinstance(meta.get(name), str) or not meta[name].strip():
            raise LessonFileError(f"{source}: field {name!r} is required (text)")
    try:
        engine = get_engine(meta["engine"])
        meta["preset"] = engine.validate_params(meta.get("preset", {}))
        for i, step in enumerate(meta.get("steps", [])):
            for action in step.get("actions", []):
                if "command" in action:
                    action["args"] = engine.command(action["command"]).coerce_args(
                        action.get("args")
                    )
                elif "set" in action:
                    for name, value in action["set"].items():
                        action["set"][name] = engine.param(name).coerce(value)
                else:
                    raise LessonFileError(
                        f"{source}: steps[{i}] action needs 'command' or 'set'"
                    )
    except EngineError as exc:
        raise LessonFileError(f"{source}: {exc.field}: {exc.message}") from None
    return meta


@transaction.atomic
def lesson_load(meta: dict[str, Any]) -> Lesson:
    """Create or update a lesson (and its module) from parsed file content."""
    module, _ = Module.objects.update_or_create(
        slug=meta["module"],
        defaults={
            "title": meta["module_title"],
            "order": int(meta.get("module_order", 0)),
        },
    )
    lesson, _ = Lesson.objects.update_or_create(
        slug=meta["slug"],
        defaults={
            "title": meta["title"],
            "module": module,
            "order": int(meta.get("order", 0)),
            "summary": meta.get("summary", ""),
            "body": meta["body"],
            "engine": meta["engine"],
            "preset": meta["preset"],
            "steps": meta.get("steps", []),
            "published": bool(meta.get("published", True)),
        },
    )
    return lesson


def load_directory(directory: Path = CONTENT_DIR) -> list[Lesson]:
    """Load every ``*.md`` lesson file in ``directory``; all or nothing."""
    parsed = [
        parse_lesson(p.read_text(encoding="utf-8"), p.name)
        for p in sorted(directory.glob("*.md"))
    ]
    with transaction.atomic():
        return [lesson_load(meta) for meta in parsed]
