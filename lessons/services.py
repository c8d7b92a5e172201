"""Lesson content: the file format, loading and exporting, rendering, versions.

A lesson file is TOML front matter between ``+++`` lines, then Markdown. The
repository's lessons (``lessons/content/*.md``) and the admin's export use the same
format; ``lesson_to_text`` writes it canonically, so export then import gives back
the same lessons exactly.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import markdown
import nh3
from django.db import transaction

from simulations.engines import get_engine
from simulations.engines.base import EngineError

from . import formulas
from .models import Lesson, LessonVersion, Module, Question, Step, Term

CONTENT_DIR = Path(__file__).resolve().parent / "content"
GLOSSARY_DIR = CONTENT_DIR / "glossary"
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
    "font-weight",
    "text-anchor",
    "dominant-baseline",
    "transform",
    "marker-end",
    "marker-start",
    "markerWidth",
    "markerHeight",
    "refX",
    "refY",
    "orient",
    "role",
    "aria-label",
    "aria-labelledby",
    "aria-hidden",
    "focusable",
    "id",
    "href",
    "opacity",
    "fill-opacity",
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
        "id",
        "role",
        "aria-label",
        "aria-hidden",
        "aria-describedby",
        "title",
        "lang",
    },
    "th": {"scope"},
    "code": {"class"},
    **dict.fromkeys(_SVG_TAGS, _SVG_ATTRS),
}

# Lesson text is shown inside the app's own page, so nothing in it may pass for a
# part of that page: its ids are namespaced (no element of it can stand in for the
# page's answers or the engine's declaration, which scripts find by id) and its
# classes are dropped (no link can look like one of the app's buttons). References
# to its ids move with them, so in-lesson links and diagrams' markers still work.
BODY_ID_PREFIX = "lesson-text-"
_ID_LISTS = {"aria-labelledby", "aria-describedby", "headers"}
_URL_REFS = {"fill", "stroke", "marker-start", "marker-end"}
_URL_REF = re.compile(r"url\(\s*#")
# The class fenced_code gives a code block to name its language.
_CODE_LANGUAGE = re.compile(r"language-[A-Za-z0-9_+-]+")


TABLE_OPEN = (
    '<div class="table-scroll" tabindex="0" role="region" aria-label="Table"><table>'
)


class LessonFileError(ValueError):
    """A lesson is malformed; the message names the source and the field."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _namespace(tag: str, attribute: str, value: str) -> str | None:
    """Namespace an attribute's ids, or drop it (None); nh3 calls this for each."""
    if attribute == "id":
        value = value.strip()
        return BODY_ID_PREFIX + value if value else None
    if attribute == "class":
        kept = [name for name in value.split() if _CODE_LANGUAGE.fullmatch(name)]
        return " ".join(kept) if tag == "code" and kept else None
    if attribute in _ID_LISTS:
        return " ".join(BODY_ID_PREFIX + ref for ref in value.split()) or None
    if attribute == "href" and value.startswith("#") and len(value) > 1:
        return "#" + BODY_ID_PREFIX + value[1:]
    if attribute in _URL_REFS:
        return _URL_REF.sub("url(#" + BODY_ID_PREFIX, value)
    return value


def render_markdown(text: str) -> str:
    """Return sanitised HTML for lesson Markdown, its ids namespaced, no classes."""
    html = markdown.markdown(
        text, extensions=["tables", "fenced_code", "sane_lists", "attr_list"]
    )
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_namespace,
        link_rel="noopener noreferrer",
    )
    # A wide table scrolls sideways inside a region that keyboards can reach,
    # instead of widening the page on a phone.
    clean = clean.replace("<table>", TABLE_OPEN).replace("</table>", "</table></div>")
    return clean.replace("<pre>", '<pre tabindex="0">')


# Parsing and validation ---------------------------------------------------------


def parse_lesson(text: str, source: str = "lesson") -> dict[str, Any]:
    """Split a lesson file into its front matter and body, and validate it."""
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
    meta["body"] = "".join(lines[end + 1 :]).strip("\n") + "\n"
    return validate_lesson(meta, source)


FIELDS = (
    "slug",
    "title",
    "module",
    "module_title",
    "module_order",
    "order",
    "status",
    "summary",
    "engine",
    "topics",
    "objectives",
    "glossary",
    "preset",
    "steps",
    "questions",
    "body",
)
STEP_TEXT_FIELDS = ("title", "predict", "text", "button", "explain")
STEP_FIELDS = (
    *STEP_TEXT_FIELDS,
    "actions",
    "prediction",
    "choices",
    "measure",
    "settle",
)
MAX_PREDICTION_CHOICES = 6
MAX_SETTLE_S = 600
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _fail(source: str, field: str, message: str) -> LessonFileError:
    return LessonFileError(f"{source}: {field}: {message}", field)


def _text(
    meta: dict[str, Any],
    name: str,
    source: str,
    *,
    required: bool = False,
    where: str = "",
) -> str:
    value = meta.get(name, "")
    field = f"{where}{name}"
    if not isinstance(value, str):
        raise _fail(source, field, "must be text")
    if required and not value.strip():
        raise _fail(source, field, "is required")
    return value


def _texts(meta: dict[str, Any], name: str, source: str) -> list[str]:
    value = meta.get(name, [])
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.strip() for v in value
    ):
        raise _fail(source, name, "must be a list of non-empty texts")
    return value


def _int(meta: dict[str, Any], name: str, source: str) -> int:
    value = meta.get(name, 0)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= 10_000
    ):
        raise _fail(source, name, "must be a whole number from 0 to 10000")
    return value


def validate_lesson(meta: dict[str, Any], source: str = "lesson") -> dict[str, Any]:
    """Return the lesson in canonical form; raise LessonFileError naming the field."""
    unknown = sorted(set(meta) - set(FIELDS))
    if unknown:
        raise _fail(source, unknown[0], "unknown field; fields: " + ", ".join(FIELDS))
    out: dict[str, Any] = {}
    for name in ("slug", "title", "module", "module_title", "engine"):
        out[name] = _text(meta, name, source, required=True).strip()
    for name in ("slug", "module"):
        if not SLUG.match(out[name]):
            raise _fail(
                source,
                name,
                "must be lower-case words joined by hyphens, like caching-and-eviction",
            )
    out["module_order"] = _int(meta, "module_order", source)
    out["order"] = _int(meta, "order", source)
    status = meta.get("status", Lesson.Status.PUBLISHED)
    if status not in Lesson.Status.values:
        raise _fail(
            source, "status", "must be one of " + ", ".join(Lesson.Status.values)
        )
    out["status"] = status
    out["summary"] = _text(meta, "summary", source).strip()
    if len(out["summary"]) > 300:
        raise _fail(source, "summary", "must be at most 300 characters")
    for name in ("topics", "objectives", "glossary"):
        out[name] = _texts(meta, name, source)
    try:
        engine = get_engine(out["engine"])
    except EngineError as exc:
        raise _fail(source, "engine", exc.message) from None
    preset = meta.get("preset", {})
    if not isinstance(preset, dict):
        raise _fail(source, "preset", "must be a table of parameter values")
    try:
        values = engine.validate_params(preset)
    except EngineError as exc:
        raise _fail(source, f"preset.{exc.field}", exc.message) from None
    out["preset"] = {p.name: values[p.name] for p in engine.params if p.name in preset}
    out["steps"] = [
        validate_step(step, i, engine, source)
        for i, step in enumerate(meta.get("steps", []))
    ]
    out["questions"] = [
        validate_question(q, i, source) for i, q in enumerate(meta.get("questions", []))
    ]
    out["body"] = _text(meta, "body", source, required=True)
    return out


def validate_step(step: Any, index: int, engine: Any, source: str) -> dict[str, Any]:
    where = f"steps[{index}]."
    if not isinstance(step, dict):
        raise _fail(source, f"steps[{index}]", "must be a table")
    unknown = sorted(set(step) - set(STEP_FIELDS))
    if unknown:
        raise _fail(
            source,
            where + unknown[0],
            "unknown field; fields: " + ", ".join(STEP_FIELDS),
        )
    out: dict[str, Any] = {
        name: _text(step, name, source, where=where).strip()
        for name in STEP_TEXT_FIELDS
    }
    if not out["title"]:
        raise _fail(source, where + "title", "is required")
    actions = step.get("actions", [])
    if not isinstance(actions, list):
        raise _fail(source, where + "actions", "must be a list")
    out["actions"] = [
        validate_action(a, f"{where}actions[{j}]", engine, source)
        for j, a in enumerate(actions)
    ]
    out.update(validate_prediction(step, out["predict"], where, engine, source))
    return out


def validate_prediction(
    step: dict[str, Any], question: str, where: str, engine: Any, source: str
) -> dict[str, Any]:
    """Check a step's prediction: its kind, choices, measured figure and settle time.

    A step that asks for one cannot be played until it is answered; once it has run
    (and ``settle`` simulated seconds passed), the student sees their prediction
    beside the figure ``measure`` read from their own run.
    """
    kinds = [k for k in Step.Prediction.values if k]
    kind = step.get("prediction", "")
    if kind not in Step.Prediction.values:
        raise _fail(
            source,
            where + "prediction",
            f"must be one of {', '.join(kinds)}, or empty for none",
        )
    choices = step.get("choices", [])
    if not isinstance(choices, list) or not all(
        isinstance(c, str) and c.strip() for c in choices
    ):
        raise _fail(source, where + "choices", "must be a list of non-empty texts")
    choices = [c.strip() for c in choices]
    if any(len(c) > 200 for c in choices):
        raise _fail(source, where + "choices", "each must be at most 200 characters")
    measure = _text(step, "measure", source, where=where).strip()
    settle = step.get("settle", 0)
    if (
        isinstance(settle, bool)
        or not isinstance(settle, (int, float))
        or not 0 <= settle <= MAX_SETTLE_S
    ):
        raise _fail(
            source,
            where + "settle",
            f"must be a number of simulated seconds from 0 to {MAX_SETTLE_S}",
        )
    figures = [m.name for m in engine.metric_specs]
    if measure and measure not in figures:
        raise _fail(
            source,
            where + "measure",
            f"must be one of the {engine.kind} engine's figures: " + ", ".join(figures),
        )
    if not kind:
        for name, value in (("choices", choices), ("measure", measure)):
            if value:
                raise _fail(
                    source,
                    where + name,
                    "goes with a prediction: set prediction to " + " or ".join(kinds),
                )
        if settle:
            raise _fail(
                source,
                where + "settle",
                "goes with a prediction: set prediction to " + " or ".join(kinds),
            )
    else:
        if not question:
            raise _fail(
                source, where + "predict", "is required: the question to predict"
            )
        if not measure:
            raise _fail(
                source,
                where + "measure",
                "is required with a prediction: one of " + ", ".join(figures),
            )
    if kind == Step.Prediction.CHOICE:
        if not 2 <= len(choices) <= MAX_PREDICTION_CHOICES:
            raise _fail(
                source,
                where + "choices",
                f"a choice prediction needs 2 to {MAX_PREDICTION_CHOICES} choices",
            )
        if len(set(choices)) != len(choices):
            raise _fail(source, where + "choices", "must all differ")
    elif choices:
        raise _fail(source, where + "choices", "only a choice prediction has choices")
    return {
        "prediction": kind,
        "choices": choices,
        "measure": measure,
        "settle": float(settle),
    }


def validate_action(
    action: Any, where: str, engine: Any, source: str
) -> dict[str, Any]:
    """Check one action against the engine's declared commands and parameters."""
    if not isinstance(action, dict) or ("command" in action) == ("set" in action):
        raise _fail(
            source, where, "needs either 'command' (with optional 'args') or 'set'"
        )
    unknown = sorted(set(action) - {"command", "args", "set", "after"})
    if unknown:
        raise _fail(
            source,
            f"{where}.{unknown[0]}",
            "unknown field; fields: command, args, set, after",
        )
    out: dict[str, Any] = {}
    try:
        if "command" in action:
            args = action.get("args", {})
            if not isinstance(args, dict):
                raise _fail(source, f"{where}.args", "must be a table")
            out["command"] = action["command"]
            out["args"] = engine.command(action["command"]).coerce_args(args)
        else:
            if not isinstance(action["set"], dict) or not action["set"]:
                raise _fail(
                    source, f"{where}.set", "must be a table of parameter values"
                )
            values = {}
            for name, value in action["set"].items():
                values[name] = engine.param(name).coerce(value)
            out["set"] = values
    except EngineError as exc:
        raise _fail(source, f"{where}.{exc.field}", exc.message) from None
    after = action.get("after", 0)
    if (
        isinstance(after, bool)
        or not isinstance(after, (int, float))
        or not 0 <= after <= 3600
    ):
        raise _fail(
            source,
            f"{where}.after",
            "must be a number of simulated seconds from 0 to 3600",
        )
    if after:
        out["after"] = float(after)
        for name in out.get("set", {}):
            if not engine.param(name).live:
                raise _fail(
                    source,
                    f"{where}.set.{name}",
                    f"{name} cannot change in a running world, so it cannot wait "
                    "for 'after'; without 'after' the step starts a new run with it",
                )
    return out


def validate_question(question: Any, index: int, source: str) -> dict[str, Any]:
    where = f"questions[{index}]."
    if not isinstance(question, dict):
        raise _fail(source, f"questions[{index}]", "must be a table")
    kind = question.get("kind", Question.Kind.CHOICE)
    if kind not in Question.Kind.values:
        raise _fail(
            source, where + "kind", "must be one of " + ", ".join(Question.Kind.values)
        )
    allowed = {"kind", "prompt", "explain"} | (
        {"choices"} if kind == "choice" else {"answer", "tolerance", "unit", "params"}
    )
    unknown = sorted(set(question) - allowed)
    if unknown:
        raise _fail(
            source,
            where + unknown[0],
            f"unknown field for a {kind} question; fields: "
            + ", ".join(sorted(allowed)),
        )
    out: dict[str, Any] = {
        "kind": kind,
        "prompt": _text(question, "prompt", source, required=True, where=where).strip(),
    }
    if kind == "choice":
        choices = question.get("choices", [])
        if not isinstance(choices, list) or len(choices) < 2:
            raise _fail(
                source,
                where + "choices",
                "a choice question needs at least two choices",
            )
        clean = []
        for j, choice in enumerate(choices):
            at = f"{where}choices[{j}]."
            if not isinstance(choice, dict) or set(choice) - {"text", "correct", "why"}:
                raise _fail(
                    source,
                    f"{where}choices[{j}]",
                    "must be a table of text, correct and why",
                )
            correct = choice.get("correct", False)
            if not isinstance(correct, bool):
                raise _fail(source, at + "correct", "must be true or false")
            clean.append(
                {
                    "text": _text(
                        choice, "text", source, required=True, where=at
                    ).strip(),
                    "correct": correct,
                    "why": _text(
                        choice, "why", source, required=True, where=at
                    ).strip(),
                }
            )
        if sum(c["correct"] for c in clean) != 1:
            raise _fail(
                source, where + "choices", "exactly one choice must be marked correct"
            )
        out["choices"] = clean
    else:
        out.update(_number_question(question, where, source))
    out["explain"] = _text(question, "explain", source, where=where).strip()
    if out.get("params"):
        _check_drawn(out, where, source)
    return out


def _number_question(question: dict, where: str, source: str) -> dict[str, Any]:
    """A number question's answer (a number, or a formula over its params), tolerance
    (a number, or "N%" of the answer), unit and params."""
    params = question.get("params", {})
    if not isinstance(params, dict):
        raise _fail(source, where + "params", "must be a table of figures")
    clean = {}
    for name, spec in params.items():
        try:
            clean[name] = formulas.param_clean(name, spec)
        except formulas.FormulaError as exc:
            raise _fail(source, f"{where}params.{name}", str(exc)) from None
    answer = question.get("answer")
    if isinstance(answer, str) and clean:
        try:
            formulas.Formula(answer, set(clean))
        except formulas.FormulaError as exc:
            raise _fail(source, where + "answer", str(exc)) from None
        answer = answer.strip()
    elif (
        isinstance(answer, bool)
        or not isinstance(answer, (int, float))
        or not math.isfinite(answer)
    ):
        raise _fail(
            source,
            where + "answer",
            "must be a number, or a formula over the question's params",
        )
    else:
        answer = float(answer)
    try:
        amount, relative = formulas.tolerance_parse(question.get("tolerance", 0))
    except formulas.FormulaError as exc:
        raise _fail(source, where + "tolerance", str(exc)) from None
    return {
        "answer": answer,
        "tolerance": f"{amount:g}%" if relative else amount,
        "unit": _text(question, "unit", source, where=where).strip(),
        "params": clean,
    }


def _check_drawn(question: dict[str, Any], where: str, source: str) -> None:
    """A drawn question shows every figure, and its formulas can be computed for
    every draw: checked at both ends of every range and at many draws."""
    params = question["params"]
    names = set(params)
    checks = []
    for field, allowed in (("prompt", names), ("explain", names | {"answer"})):
        try:
            checks += [
                (field, f) for f in formulas.placeholders(question[field], allowed)
            ]
        except formulas.FormulaError as exc:
            raise _fail(source, where + field, str(exc)) from None
    for name in params:
        if not re.search(r"\{[^{}]*\b" + name + r"\b[^{}]*\}", question["prompt"]):
            raise _fail(
                source,
                f"{where}params.{name}",
                f"the prompt never shows it: write {{{name}}} where the student reads it",
            )
    answer = question["answer"]
    formula = formulas.Formula(answer, names) if isinstance(answer, str) else None
    for values in formulas.corners(params):
        drawn = ", ".join(f"{k} = {v}" for k, v in values.items())
        try:
            result = formula(values) if formula else answer
        except formulas.FormulaError as exc:
            raise _fail(source, where + "answer", f"{exc} (with {drawn})") from None
        for field, shown in checks:
            try:
                shown({**values, "answer": result})
            except formulas.FormulaError as exc:
                raise _fail(source, where + field, f"{exc} (with {drawn})") from None


def question_seed(who: str, slug: str, index: int) -> str:
    """What draws a question's figures: a visitor (or ``class:CODE``), the lesson and
    the question's place in it; the same figures on every visit."""
    return f"{who}|{slug}|{index}"


def question_draw(question: dict[str, Any], seed: str) -> dict[str, Any]:
    """A canonical question as one student (or class) meets it, ``seed`` naming them:
    its figures drawn, its prompt and explanation filled in, its answer computed and
    its tolerance in the answer's unit. A question without params is as written."""
    if question["kind"] != Question.Kind.NUMBER:
        return question
    params = question.get("params") or {}
    values = formulas.draw(params, seed) if params else {}
    answer = question["answer"]
    if isinstance(answer, str):
        answer = formulas.Formula(answer, set(values))(values)
    amount, relative = formulas.tolerance_parse(question["tolerance"])
    drawn = {
        **question,
        "answer": answer,
        "shown": formulas.figure(answer),
        "tolerance": amount * abs(answer) / 100 if relative else amount,
    }
    if params:
        drawn["prompt"] = formulas.fill(question["prompt"], values)
        drawn["explain"] = formulas.fill(
            question["explain"], {**values, "answer": answer}
        )
    return drawn


# Writing the file format ----------------------------------------------------------


def _toml_str(value: str) -> str:
    if "\n" in value:
        body = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"""\n' + body + '"""'
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\t", "\\t")
        .replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, dict):
        inner = ", ".join(
            f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()
        )
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [_toml_value(v) for v in value]
        flat = "[" + ", ".join(items) + "]"
        if len(flat) <= 80 and "\n" not in flat:
            return flat
        return "[\n" + "".join(f"  {item},\n" for item in items) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def params_to_text(params: dict[str, Any]) -> str:
    """A drawn question's figures, one per line, as the file format writes them."""
    return "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in params.items())


def _toml_key(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else _toml_str(key)


def lesson_to_text(lesson: dict[str, Any]) -> str:
    """Write a canonical lesson (as ``validate_lesson`` returns it) in the file format."""
    out = [FENCE]
    for name in FIELDS[:-4]:
        out.append(f"{name} = {_toml_value(lesson[name])}")
    if lesson["preset"]:
        out += ["", "[preset]"]
        out += [
            f"{_toml_key(k)} = {_toml_value(v)}" for k, v in lesson["preset"].items()
        ]
    for step in lesson["steps"]:
        out += ["", "[[steps]]"]
        out += [
            f"{name} = {_toml_value(step[name])}"
            for name in STEP_FIELDS
            if step[name] or name == "title"
        ]
    for question in lesson["questions"]:
        out += ["", "[[questions]]"]
        for name, value in question.items():
            if name not in ("choices", "params") and (
                value or name in ("kind", "prompt", "answer")
            ):
                out.append(f"{name} = {_toml_value(value)}")
        if question.get("params"):
            out += ["", "[questions.params]", params_to_text(question["params"])]
        for choice in question.get("choices", []):
            out += ["[[questions.choices]]"] + [
                f"{k} = {_toml_value(v)}" for k, v in choice.items()
            ]
    out += [FENCE, lesson["body"].rstrip("\n"), ""]
    return "\n".join(out)


# Between files and the database ------------------------------------------------------


def lesson_to_dict(lesson: Lesson) -> dict[str, Any]:
    """Return a lesson from the database in canonical form."""
    data = {
        "slug": lesson.slug,
        "title": lesson.title,
        "module": lesson.module.slug,
        "module_title": lesson.module.title,
        "module_order": lesson.module.order,
        "order": lesson.order,
        "status": lesson.status,
        "summary": lesson.summary,
        "engine": lesson.engine,
        "topics": list(lesson.topics),
        "objectives": list(lesson.objectives),
        "glossary": list(lesson.glossary),
        "preset": dict(lesson.preset),
        "steps": [{n: getattr(s, n) for n in STEP_FIELDS} for s in lesson.steps.all()],
        "questions": [],
        "body": lesson.body,
    }
    data["questions"] = [question_as_dict(q) for q in lesson.questions.all()]
    return validate_lesson(data, lesson.slug)


def question_as_dict(question: Question) -> dict[str, Any]:
    """A saved question in the file format's shape (not yet checked)."""
    item: dict[str, Any] = {"kind": question.kind, "prompt": question.prompt}
    if question.kind == Question.Kind.CHOICE:
        item["choices"] = question.choices
    else:
        item.update(
            answer=question.formula or question.answer,
            tolerance=f"{question.tolerance:g}%"
            if question.relative
            else question.tolerance,
            unit=question.unit,
            params=question.params,
        )
    item["explain"] = question.explain
    return item


def question_columns(question: dict[str, Any]) -> dict[str, Any]:
    """A canonical question's values for the columns of ``Question``."""
    answer = question.get("answer")
    tolerance, relative = formulas.tolerance_parse(question.get("tolerance", 0))
    return {
        "kind": question["kind"],
        "prompt": question["prompt"],
        "choices": question.get("choices", []),
        "answer": answer if isinstance(answer, float) else None,
        "formula": answer if isinstance(answer, str) else "",
        "params": question.get("params", {}),
        "tolerance": tolerance,
        "relative": relative,
        "unit": question.get("unit", ""),
        "explain": question["explain"],
    }


@transaction.atomic
def lesson_save(data: dict[str, Any], *, author=None, note: str = "") -> Lesson:
    """Create or update a lesson with its module, steps and questions; record a version."""
    module, _ = Module.objects.update_or_create(
        slug=data["module"],
        defaults={"title": data["module_title"], "order": data["module_order"]},
    )
    lesson, _ = Lesson.objects.update_or_create(
        slug=data["slug"],
        defaults={
            "title": data["title"],
            "module": module,
            "order": data["order"],
            "status": data["status"],
            "summary": data["summary"],
            "engine": data["engine"],
            "topics": data["topics"],
            "objectives": data["objectives"],
            "glossary": data["glossary"],
            "preset": data["preset"],
            "body": data["body"],
        },
    )
    lesson.steps.all().delete()
    Step.objects.bulk_create(
        Step(lesson=lesson, order=i, **{n: s[n] for n in STEP_FIELDS})
        for i, s in enumerate(data["steps"])
    )
    lesson.questions.all().delete()
    Question.objects.bulk_create(
        Question(lesson=lesson, order=i, **question_columns(q))
        for i, q in enumerate(data["questions"])
    )
    version_record(lesson, author=author, note=note)
    return lesson


def version_record(
    lesson: Lesson, *, author=None, note: str = ""
) -> LessonVersion | None:
    """Keep the lesson's current text as a version, unless it equals the latest one."""
    text = lesson_to_text(lesson_to_dict(lesson))
    latest = LessonVersion.objects.filter(slug=lesson.slug).first()
    if latest is not None and latest.text == text:
        return None
    return LessonVersion.objects.create(
        lesson=lesson, slug=lesson.slug, text=text, author=author, note=note
    )


def version_latest_id(lesson: Lesson) -> int:
    """Return the id of the lesson's latest version (0 if it has none)."""
    return lesson.versions.order_by("-pk").values_list("pk", flat=True).first() or 0


@dataclass(frozen=True)
class LessonChanges:
    """What was saved in a lesson since a version of it: by whom, and which fields."""

    versions: list[LessonVersion]  # saved since, oldest first
    fields: list[str]  # in the file format's order; empty when it cannot be told


# Fields of the file that belong to the lesson's module: a lesson's form never
# writes them, so their change cannot be lost by saving the lesson.
_MODULE_FIELDS = ("module_title", "module_order")


@transaction.atomic
def lesson_changes_since(lesson: Lesson, version_id: int) -> LessonChanges | None:
    """Return what changed in the lesson since its version ``version_id``, or None.

    The lesson's row stays locked until the caller's transaction ends, so of two
    saves based on the same version the second sees the first (on PostgreSQL; SQLite
    runs one writing transaction at a time).
    """
    current = Lesson.objects.select_for_update().filter(pk=lesson.pk).first()
    if current is None:
        return None
    since = list(
        current.versions.filter(pk__gt=version_id)
        .select_related("author")
        .order_by("pk")
    )
    if not since:
        return None
    base = current.versions.filter(pk=version_id).first()
    try:
        opened = parse_lesson(base.text, current.slug) if base else None
    except LessonFileError:
        opened = None
    if opened is None:
        return LessonChanges(versions=since, fields=[])
    now = lesson_to_dict(current)
    fields = [
        name
        for name in FIELDS
        if name not in _MODULE_FIELDS and opened[name] != now[name]
    ]
    return LessonChanges(versions=since, fields=fields) if fields else None


def load_glossary(directory: Path = GLOSSARY_DIR) -> list[Term]:
    """Create or update glossary terms from ``*.toml`` files: ``[slug] term=.. definition=..``."""
    terms = []
    for path in sorted(directory.glob("*.toml")):
        try:
            entries = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise LessonFileError(f"{path.name}: not valid TOML: {exc}") from None
        for slug, entry in entries.items():
            if (
                not SLUG.match(slug)
                or not isinstance(entry, dict)
                or set(entry) != {"term", "definition"}
            ):
                raise LessonFileError(
                    f"{path.name}: [{slug}] needs a slug name and exactly term and definition"
                )
            term, _ = Term.objects.update_or_create(slug=slug, defaults=entry)
            terms.append(term)
    return terms


def load_directory(directory: Path = CONTENT_DIR) -> list[Lesson]:
    """Load every lesson file in ``directory`` and the glossary; all or nothing."""
    parsed = [
        parse_lesson(p.read_text(encoding="utf-8"), p.name)
        for p in sorted(directory.glob("*.md"))
    ]
    with transaction.atomic():
        if (directory / "glossary").is_dir():
            load_glossary(directory / "glossary")
        known = set(Term.objects.values_list("slug", flat=True))
        for data in parsed:
            missing = [t for t in data["glossary"] if t not in known]
            if missing:
                raise LessonFileError(
                    f"{data['slug']}: glossary: no term {missing[0]!r} in the glossary files"
                )
        return [lesson_save(data, note="loaded from file") for data in parsed]


def export_directory(directory: Path, lessons=None) -> list[Path]:
    """Write lessons (all by default) as files into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for lesson in (
        lessons if lessons is not None else Lesson.objects.select_related("module")
    ):
        path = directory / f"{lesson.slug}.md"
        path.write_text(lesson_to_text(lesson_to_dict(lesson)), encoding="utf-8")
        written.append(path)
    return written
