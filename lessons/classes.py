"""Class sessions: a join code, one teacher-paced lesson, polls counted and revealed.

Everything here reads and writes the database only (``ClassSession``, ``ClassMember``
and ``ClassAnswer``), so any web process can serve any class. Each change of a
session's state bumps its ``version``; the class sockets of a process watch the
versions of their sessions and send the new state when it moves.
"""

from __future__ import annotations

import csv
import io
import math
import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from simulations.engines.base import EngineError, Param
from simulations.validation import Const, Object, Scalar, Tagged, Text

from .models import ClassAnswer, ClassMember, ClassSession, Lesson, Step

# Letters and digits that cannot be taken for one another (no 0/O, 1/I/L, 5/S, 2/Z).
CODE_ALPHABET = "ABCDEFGHJKMNPQRTUVWXY346789"
CODE_LENGTH = 6
INSTRUCTORS = "Instructors"
HISTOGRAM_BINS = 10
MAX_NAME = 40


class ClassError(ValueError):
    """A refused class action: the HTTP status, the field at fault and why."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


def is_instructor(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and (user.is_staff or user.groups.filter(name=INSTRUCTORS).exists())
    )


def lifetime() -> timedelta:
    return timedelta(hours=settings.SCALELAB["CLASS_HOURS"])


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    """A code as typed: any case, spaces and dashes ignored."""
    return "".join(c for c in str(code).upper() if c not in " -")[:CODE_LENGTH]


def class_create(teacher, body: dict[str, Any]) -> ClassSession:
    """Start a class on a published lesson; only an instructor may."""
    if not is_instructor(teacher):
        raise ClassError(403, "user", "only instructors (or staff) can start a class")
    if not isinstance(body, dict):
        raise ClassError(
            400, "body", "the body must be a JSON object with lesson and mode"
        )
    unknown = set(body) - {"lesson", "mode"}
    if unknown:
        raise ClassError(
            400, sorted(unknown)[0], "the body has the fields lesson and mode only"
        )
    slug = body.get("lesson")
    lesson = Lesson.objects.filter(
        slug=slug if isinstance(slug, str) else "", status=Lesson.Status.PUBLISHED
    ).first()
    if lesson is None:
        raise ClassError(400, "lesson", "lesson must be the slug of a published lesson")
    mode = _mode_field(body.get("mode"))
    for _ in range(20):
        try:
            with transaction.atomic():
                return ClassSession.objects.create(
                    code=new_code(),
                    lesson=lesson,
                    teacher=teacher,
                    mode=mode,
                    expires_at=timezone.now() + lifetime(),
                )
        except IntegrityError:  # the code was taken: draw another
            continue
    raise ClassError(503, "code", "no free join code could be found; try again")


def class_live(code: str) -> ClassSession:
    """The session a code names, if it is still on; otherwise a 404 saying why."""
    session = (
        ClassSession.objects.select_related("lesson")
        .filter(code=normalise_code(code))
        .first()
    )
    if session is None:
        raise ClassError(
            404, "code", "no class has this code: check it with your teacher"
        )
    if session.ended_at is not None:
        raise ClassError(404, "code", "this class has ended")
    if session.expires_at <= timezone.now():
        raise ClassError(404, "code", "this class has expired")
    return session


def class_join(
    session: ClassSession, visitor: str, name: Any = None
) -> tuple[ClassMember, bool]:
    """Put the visitor in the class (once); a name is for the teacher's eyes only."""
    if name is not None and (not isinstance(name, str) or len(name.strip()) > MAX_NAME):
        raise ClassError(
            400, "name", f"name must be a text of at most {MAX_NAME} characters"
        )
    name = (name or "").strip()
    member, created = ClassMember.objects.get_or_create(
        session=session, visitor=visitor, defaults={"name": name}
    )
    if not created and name and member.name != name:
        member.name = name
        member.save(update_fields=["name"])
    if created:
        bump(session)
    return member, created


def class_end(session: ClassSession) -> None:
    ClassSession.objects.filter(pk=session.pk).update(
        ended_at=timezone.now(), poll="", version=F("version") + 1
    )


def bump(session: ClassSession, **fields: Any) -> None:
    """Change the session's state (or none) and tell its watchers."""
    ClassSession.objects.filter(pk=session.pk).update(
        version=F("version") + 1, **fields
    )
    for name, value in fields.items():
        setattr(session, name, value)


# Messages on the class socket ----------------------------------------------------


def _step_field() -> Scalar:
    return Scalar(Param("step", "int", None, 0, 1000))


def _message(kind: str, *fields, required=()) -> Object:
    return Object(
        kind,
        (Const("type", kind), *fields),
        required=("type", *required),
        label=f"a {kind} message",
    )


TEACHER_MESSAGES = (
    "run",
    "step",
    "pause_all",
    "resume_all",
    "mode",
    "poll.open",
    "poll.close",
    "poll.reveal",
    "end",
)
MESSAGES = Tagged(
    "message",
    "type",
    (
        _message("step", _step_field(), required=("step",)),
        _message("run", Text("run", max_length=36), required=("run",)),
        _message("pause_all"),
        _message("resume_all"),
        _message("mode", Text("mode", max_length=10), required=("mode",)),
        _message("poll.open", _step_field(), required=("step",)),
        _message("poll.close", _step_field(), required=("step",)),
        _message("poll.reveal", _step_field(), required=("step",)),
        _message("end"),
        _message(
            "poll.answer",
            _step_field(),
            Scalar(Param("value", "float", None)),
            required=("step", "value"),
        ),
        _message("ping"),
    ),
)


def step_of(session: ClassSession, index: int) -> Step:
    step = session.lesson.steps.filter(order=index).first()
    if step is None:
        count = session.lesson.steps.count()
        raise EngineError(
            "step",
            f"step must be a step of the lesson, numbered from 0: 0 to {count - 1}",
        )
    return step


def polled_step(session: ClassSession, index: int) -> Step:
    step = step_of(session, index)
    if not step.prediction:
        raise EngineError(
            "step", f"step {index} asks for no prediction, so it has no poll"
        )
    return step


def teacher_control(session: ClassSession, message: dict[str, Any]) -> None:
    """Carry out a teacher's message (checked against ``MESSAGES``)."""
    kind = message["type"]
    if kind == "run":
        bump(session, run=shared_run(session, message["run"]))
    elif kind == "step":
        step_of(session, message["step"])
        bump(session, step=message["step"])
    elif kind == "pause_all":
        bump(session, paused=True)
    elif kind == "resume_all":
        bump(session, paused=False)
    elif kind == "mode":
        bump(session, mode=_mode_field(message["mode"]))
    elif kind == "poll.open":
        polled_step(session, message["step"])
        bump(session, poll=ClassSession.Poll.OPEN, poll_step=message["step"])
    elif kind in ("poll.close", "poll.reveal"):
        if session.poll_step != message["step"] or not session.poll:
            raise EngineError(
                "step", f"step {message['step']} has no poll open or closed"
            )
        state = (
            ClassSession.Poll.CLOSED
            if kind == "poll.close"
            else ClassSession.Poll.REVEALED
        )
        bump(session, poll=state)
    elif kind == "end":
        class_end(session)


def shared_run(session: ClassSession, run_id: str):
    """The teacher's live run of the lesson's engine, which the class watches."""
    from simulations.models import Run
    from simulations.runs.constants import LIVE

    try:
        run = Run.objects.filter(id=uuid.UUID(run_id), owner=session.teacher).first()
    except ValueError:
        run = None
    if run is None or run.kind != session.lesson.engine or run.status not in LIVE:
        raise EngineError(
            "run", "run must be a live run of yours of this lesson's engine"
        )
    return run


def _mode_field(value: Any) -> str:
    """A class's mode (teacher-paced unless given), or EngineError naming mode."""
    modes = ClassSession.Mode.values
    if value is None:
        return ClassSession.Mode.TEACHER
    if value not in modes:
        raise EngineError(
            "mode", f"mode must be one of {', '.join(modes)}; got {value!r}"
        )
    return value


def poll_answer(
    session: ClassSession, member: ClassMember, step_index: int, value: float
) -> None:
    """Record a member's answer to the open poll (the last answer counts)."""
    if session.poll != ClassSession.Poll.OPEN or session.poll_step != step_index:
        raise EngineError("step", f"no poll is open for step {step_index}")
    step = polled_step(session, step_index)
    fields: dict[str, Any] = {"choice": None, "value": None}
    if step.prediction == Step.Prediction.CHOICE:
        count = len(step.choices)
        if not float(value).is_integer() or not 0 <= value < count:
            raise EngineError(
                "value", f"value must be the number of a choice: 0 to {count - 1}"
            )
        fields["choice"] = int(value)
    else:
        if not math.isfinite(value):
            raise EngineError("value", "value must be a finite number")
        fields["value"] = value
    ClassAnswer.objects.update_or_create(
        session=session, member=member, step=step_index, defaults=fields
    )
    bump(session)


def poll_results(session: ClassSession, step_index: int) -> dict[str, Any]:
    """The class's answers to a step: how many, and their distribution (anonymous)."""
    step = step_of(session, step_index)
    answers = ClassAnswer.objects.filter(session=session, step=step_index)
    out: dict[str, Any] = {
        "type": "poll.results",
        "step": step_index,
        "state": session.poll if session.poll_step == step_index else "",
    }
    if step.prediction == Step.Prediction.CHOICE:
        counts = dict(answers.values_list("choice").annotate(n=Count("id")))
        out["kind"] = "choice"
        out["choices"] = list(step.choices)
        out["counts"] = [counts.get(i, 0) for i in range(len(step.choices))]
        out["answers"] = sum(out["counts"])
        return out
    values = sorted(answers.values_list("value", flat=True))
    out["kind"] = "number"
    out["answers"] = len(values)
    out["histogram"] = histogram(values)
    return out


def histogram(values: list[float], bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Equal-width bins over the answers' range: edges and counts."""
    if not values:
        return {"edges": [], "counts": []}
    lo, hi = values[0], values[-1]
    if hi == lo:
        return {"edges": [lo, hi], "counts": [len(values)]}
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return {"edges": [lo + i * width for i in range(bins + 1)], "counts": counts}


def state_of(session: ClassSession) -> dict[str, Any]:
    """What every member is told of the session (no member is named)."""
    return {
        "type": "class.state",
        "code": session.code,
        "lesson": session.lesson.slug,
        "mode": session.mode,
        "step": session.step,
        "paused": session.paused,
        "poll": {"step": session.poll_step, "state": session.poll}
        if session.poll
        else None,
        "run": str(session.run_id) if session.run_id else None,
        "members": session.members.count(),
        "ended": session.ended_at is not None,
        "version": session.version,
    }


def results_csv(session: ClassSession) -> str:
    """Per student, their answers to each polled step (the teacher's download)."""
    steps = list(session.lesson.steps.exclude(prediction="").order_by("order"))
    answers: dict[tuple[int, int], ClassAnswer] = {
        (a.member_id, a.step): a for a in ClassAnswer.objects.filter(session=session)
    }
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student", *[f"step {s.order}: {s.title}" for s in steps]])
    for number, member in enumerate(session.members.all(), start=1):
        row = [member.name or f"student {number}"]
        for s in steps:
            a = answers.get((member.pk, s.order))
            if a is None:
                row.append("")
            elif a.choice is not None:
                row.append(
                    s.choices[a.choice] if a.choice < len(s.choices) else a.choice
                )
            else:
                row.append(f"{a.value:g}")
        writer.writerow(row)
    return out.getvalue()
