"""Progress: lessons seen, checkpoints passed and the steps' predictions.

Anonymous visitors keep it in their session; signed-in students in the database.
On sign-in the session's progress is merged into the account.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from .models import Lesson, Progress

KEY = "progress"


def _session_progress(session) -> dict[str, dict[str, Any]]:
    return session.get(KEY, {})


def progress_mark_seen(request, lesson: Lesson) -> None:
    now = timezone.now()
    if request.user.is_authenticated:
        Progress.objects.update_or_create(
            user=request.user, lesson=lesson, defaults={"seen_at": now}
        )
        return
    data = _session_progress(request.session)
    entry = data.setdefault(lesson.slug, {"passed": []})
    entry["seen"] = now.isoformat()
    request.session[KEY] = data


def progress_pass(request, lesson: Lesson, order: int) -> None:
    if request.user.is_authenticated:
        with transaction.atomic():
            row, _ = Progress.objects.select_for_update().get_or_create(
                user=request.user, lesson=lesson, defaults={"seen_at": timezone.now()}
            )
            if order not in row.passed:
                row.passed = sorted({*row.passed, order})
                row.save(update_fields=["passed"])
        return
    data = _session_progress(request.session)
    entry = data.setdefault(
        lesson.slug, {"passed": [], "seen": timezone.now().isoformat()}
    )
    entry["passed"] = sorted({*entry["passed"], order})
    request.session[KEY] = data


class PredictionError(Exception):
    """A prediction that cannot be recorded now; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _update_predictions(request, lesson: Lesson, change) -> dict[str, Any]:
    """Apply ``change(predictions)`` to the visitor's predictions in ``lesson``.

    ``change`` edits the dict (keyed by step order, as text) in place and returns the
    entry it wrote; it may raise PredictionError, which leaves everything as it was.
    """
    if request.user.is_authenticated:
        with transaction.atomic():
            row, _ = Progress.objects.select_for_update().get_or_create(
                user=request.user, lesson=lesson, defaults={"seen_at": timezone.now()}
            )
            entry = change(row.predictions)
            row.save(update_fields=["predictions"])
        return entry
    data = _session_progress(request.session)
    entry_of_lesson = data.setdefault(
        lesson.slug, {"passed": [], "seen": timezone.now().isoformat()}
    )
    predictions = entry_of_lesson.setdefault("predictions", {})
    entry = change(predictions)
    request.session[KEY] = data
    request.session.modified = True
    return entry


def progress_predict(
    request, lesson: Lesson, order: int, answer: dict[str, Any]
) -> dict[str, Any]:
    """Record the visitor's prediction for step ``order``: ``{"choice": i}`` or ``{"value": x}``.

    It can change until the step's figure is measured, and not after: the point is
    to commit before seeing.
    """

    def change(predictions: dict[str, Any]) -> dict[str, Any]:
        old = predictions.get(str(order), {})
        if "measured" in old:
            raise PredictionError(
                "prediction", "this step has run: its prediction can no longer change"
            )
        entry = {**answer, "at": timezone.now().isoformat()}
        predictions[str(order)] = entry
        return entry

    return _update_predictions(request, lesson, change)


def progress_measure(
    request, lesson: Lesson, order: int, measured: dict[str, Any]
) -> dict[str, Any]:
    """Record the figure measured in the visitor's run once step ``order`` ran."""

    def change(predictions: dict[str, Any]) -> dict[str, Any]:
        entry = predictions.get(str(order))
        if entry is None:
            raise PredictionError(
                "prediction", "predict first: this step has no prediction yet"
            )
        entry["measured"] = measured
        return entry

    return _update_predictions(request, lesson, change)


def progress_of(request) -> dict[str, dict[str, Any]]:
    """Return {lesson slug: {"seen": datetime, "passed": set of question orders,
    "predictions": {step order: entry}}}."""
    if request.user.is_authenticated:
        return {
            p.lesson.slug: {
                "seen": p.seen_at,
                "passed": set(p.passed),
                "predictions": {int(k): v for k, v in p.predictions.items()},
            }
            for p in Progress.objects.filter(user=request.user).select_related("lesson")
        }
    out = {}
    for slug, entry in _session_progress(request.session).items():
        seen = entry.get("seen")
        out[slug] = {
            "seen": timezone.datetime.fromisoformat(seen) if seen else None,
            "passed": set(entry.get("passed", [])),
            "predictions": {int(k): v for k, v in entry.get("predictions", {}).items()},
        }
    return out


@transaction.atomic
def progress_merge(session, user) -> int:
    """Move a session's progress into ``user``'s account; return how many lessons it touched."""
    data = _session_progress(session)
    lessons = {lesson.slug: lesson for lesson in Lesson.objects.filter(slug__in=data)}
    for slug, entry in data.items():
        lesson = lessons.get(slug)
        if lesson is None:
            continue
        seen = (
            timezone.datetime.fromisoformat(entry["seen"])
            if entry.get("seen")
            else timezone.now()
        )
        row, created = Progress.objects.get_or_create(
            user=user,
            lesson=lesson,
            defaults={
                "seen_at": seen,
                "passed": sorted(entry.get("passed", [])),
                "predictions": entry.get("predictions", {}),
            },
        )
        if not created:
            row.seen_at = max(row.seen_at, seen)
            row.passed = sorted({*row.passed, *entry.get("passed", [])})
            # A step predicted in both keeps the account's: a prediction on record
            # is never replaced.
            row.predictions = {**entry.get("predictions", {}), **row.predictions}
            row.save(update_fields=["seen_at", "passed", "predictions"])
    session.pop(KEY, None)
    return len(lessons)


def overview(request) -> dict[str, Any]:
    """Return the published lessons with their progress, and the lesson to continue with."""
    lessons = list(
        Lesson.objects.filter(status=Lesson.Status.PUBLISHED)
        .select_related("module")
        .prefetch_related("questions")
    )
    progress = progress_of(request)
    rows = []
    for lesson in lessons:
        entry = progress.get(lesson.slug)
        total = len(lesson.questions.all())
        passed = len(entry["passed"]) if entry else 0
        rows.append(
            {
                "lesson": lesson,
                "seen": entry["seen"] if entry else None,
                "passed": passed,
                "total": total,
                "done": bool(entry) and passed >= total,
            }
        )
    seen = [r for r in rows if r["seen"]]
    resume = None
    if seen:
        last = max(seen, key=lambda r: r["seen"])
        if not last["done"]:
            resume = last["lesson"]
        else:
            later = rows[rows.index(last) + 1 :] + rows
            resume = next((r["lesson"] for r in later if not r["done"]), None)
    return {
        "rows": rows,
        "resume": resume,
        "seen": len(seen),
        "done": sum(r["done"] for r in rows),
        "count": len(rows),
    }
