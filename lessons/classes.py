"""Class sessions: a join code, a lesson taken together or each at their own pace,
predictions polled and revealed, checkpoint questions asked of the whole class.

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
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from simulations.engines.base import EngineError, Param
from simulations.validation import Const, Object, Scalar, Tagged, Text

from .models import ClassAnswer, ClassMember, ClassSession, Lesson, Question, Step
from .services import question_as_dict, question_draw, question_seed

# Letters and digits that cannot be taken for one another (no 0/O, 1/I/L, 5/S, 2/Z).
CODE_ALPHABET = "ABCDEFGHJKMNPQRTUVWXY346789"
CODE_LENGTH = 6
INSTRUCTORS = "Instructors"
HISTOGRAM_BINS = 10
MAX_NAME = 40
IDLE_S = 180  # a student who has not moved for this long is marked on the dashboard


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


def class_allowance(visitor: str) -> tuple[str, int, int] | None:
    """A class member's run allowance: (key, live runs, new runs a minute), or None.

    A class behind one school address would soon meet the per-address limits, so
    the runs of a member of a live class are counted per class instead, with room
    for every member (``SCALELAB_CLASS_RUNS_PER_MEMBER`` each, never less than an
    address has). Each member's own quota still applies.
    """
    if not visitor:
        return None
    member = (
        ClassMember.objects.filter(
            visitor=visitor,
            session__ended_at__isnull=True,
            session__expires_at__gt=timezone.now(),
        )
        .select_related("session")
        .order_by("-joined_at")
        .first()
    )
    if member is None:
        return None
    quota = settings.SCALELAB
    room = member.session.members.count() * quota["CLASS_RUNS_PER_MEMBER"]
    return (
        f"class:{member.session.code}",
        max(quota["ADDRESS_LIVE_RUNS"], room),
        max(quota["ADDRESS_RUNS_PER_MIN"], 2 * room),
    )


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


def _question_field() -> Scalar:
    return Scalar(Param("question", "int", None, 0, 1000))


def _value_field() -> Scalar:
    return Scalar(Param("value", "float", None))


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
    "measured",
    "question.open",
    "question.close",
    "end",
)
STUDENT_MESSAGES = ("poll.answer", "question.answer", "progress")
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
        _message("measured", _step_field(), _value_field(), required=("step", "value")),
        _message("question.open", _question_field(), required=("question",)),
        _message("question.close", _question_field(), required=("question",)),
        _message("end"),
        _message(
            "poll.answer", _step_field(), _value_field(), required=("step", "value")
        ),
        _message(
            "question.answer",
            _question_field(),
            _value_field(),
            required=("question", "value"),
        ),
        _message("progress", _step_field(), required=("step",)),
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


def question_of(session: ClassSession, index: int) -> Question:
    """The lesson's checkpoint question ``index`` (numbered from 0, as listed)."""
    questions = list(session.lesson.questions.all())
    if not 0 <= index < len(questions):
        allowed = f"0 to {len(questions) - 1}" if questions else "none: it has none"
        raise EngineError(
            "question",
            f"question must be a question of the lesson, numbered from 0: {allowed}",
        )
    return questions[index]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise EngineError("value", "value must be a finite number")
    return value


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
    elif kind == "measured":
        polled_step(session, message["step"])
        measured = {**session.measured, str(message["step"]): _finite(message["value"])}
        bump(session, measured=measured)
    elif kind == "question.open":
        question_of(session, message["question"])
        bump(
            session, question=message["question"], question_state=ClassSession.Poll.OPEN
        )
    elif kind == "question.close":
        if (
            session.question != message["question"]
            or session.question_state != ClassSession.Poll.OPEN
        ):
            raise EngineError("question", f"question {message['question']} is not open")
        bump(session, question_state=ClassSession.Poll.CLOSED)
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


def _choice_or_number(kind: str, count: int, value: float) -> dict[str, Any]:
    """An answer's columns: a choice's number for a choice, else a finite number."""
    if kind == "choice":
        if not float(value).is_integer() or not 0 <= value < count:
            raise EngineError(
                "value", f"value must be the number of a choice: 0 to {count - 1}"
            )
        return {"choice": int(value), "value": None}
    return {"choice": None, "value": _finite(value)}


def answer_of(
    session: ClassSession, message: dict[str, Any], lookups: dict | None = None
) -> tuple[str, int, dict[str, Any]]:
    """Check a ``poll.answer`` or ``question.answer``: (kind, number, columns).

    Teacher-paced, only the open poll or question takes answers; at their own pace,
    students answer any step's prediction or any question when they reach it.
    ``lookups`` keeps the steps and questions read, for a batch of answers.
    """
    lookups = {} if lookups is None else lookups
    if message["type"] == "poll.answer":
        field, kind, index = "step", ClassAnswer.Kind.STEP, message["step"]
        is_open = session.poll == ClassSession.Poll.OPEN and session.poll_step == index
        closed, read = f"no poll is open for step {index}", polled_step
    else:
        field, kind, index = "question", ClassAnswer.Kind.QUESTION, message["question"]
        is_open = (
            session.question == index
            and session.question_state == ClassSession.Poll.OPEN
        )
        closed, read = f"question {index} is not open", question_of
    if session.mode != ClassSession.Mode.STUDENT and not is_open:
        raise EngineError(field, closed)
    if (field, index) not in lookups:
        lookups[field, index] = read(session, index)
    item = lookups[field, index]
    # A step asks with its ``prediction`` kind, a question with its ``kind``.
    asked = item.prediction if field == "step" else item.kind
    return kind, index, _choice_or_number(asked, len(item.choices), message["value"])


def record_answers(
    session: ClassSession, answers: list[tuple[int, str, int, dict[str, Any]]]
) -> None:
    """Save checked answers, (member id, kind, number, columns), in one statement.

    A class answers all at once, so a process writes the answers it received in a
    moment together; the last of a member's answers to the same item counts. The
    session's row is not touched (300 writers would queue on it): the watchers see
    answers by their count and latest time.
    """
    last = {(m, kind, index): fields for m, kind, index, fields in answers}
    if not last:
        return
    with transaction.atomic():
        ClassAnswer.objects.bulk_create(
            [
                ClassAnswer(
                    session=session, member_id=m, kind=kind, step=index, **fields
                )
                for (m, kind, index), fields in last.items()
            ],
            update_conflicts=True,
            unique_fields=["session", "member", "kind", "step"],
            update_fields=["choice", "value", "answered_at"],
        )
        # Answering is moving on: the dashboard does not mark the member idle.
        ClassMember.objects.filter(pk__in={m for m, _, _ in last}).update(
            moved_at=timezone.now()
        )


def progress(session: ClassSession, member: ClassMember, step_index: int) -> None:
    """A member at their own pace reached a step: the teacher's dashboard shows it."""
    step_of(session, step_index)
    ClassMember.objects.filter(pk=member.pk).update(
        step=step_index, moved_at=timezone.now()
    )
    bump(session)


def _distribution(answers: QuerySet, kind: str, choices: list[str]) -> dict[str, Any]:
    """How many answered, and how: counts per choice, or a histogram of numbers."""
    if kind == "choice":
        counts = dict(answers.values_list("choice").annotate(n=Count("id")))
        per_choice = [counts.get(i, 0) for i in range(len(choices))]
        return {
            "kind": "choice",
            "choices": list(choices),
            "counts": per_choice,
            "answers": sum(per_choice),
        }
    values = sorted(answers.values_list("value", flat=True))
    return {"kind": "number", "answers": len(values), "histogram": histogram(values)}


def poll_results(session: ClassSession, step_index: int) -> dict[str, Any]:
    """The class's predictions for a step, anonymous, and the figure measured once
    the shared run has played it."""
    step = step_of(session, step_index)
    answers = ClassAnswer.objects.filter(
        session=session, kind=ClassAnswer.Kind.STEP, step=step_index
    )
    return {
        "type": "poll.results",
        "step": step_index,
        "state": session.poll if session.poll_step == step_index else "",
        "measured": session.measured.get(str(step_index)),
        **_distribution(answers, step.prediction, step.choices),
    }


def question_results(session: ClassSession, index: int) -> dict[str, Any]:
    """The class's answers to a checkpoint question; the right one once closed."""
    question = question_of(session, index)
    answers = ClassAnswer.objects.filter(
        session=session, kind=ClassAnswer.Kind.QUESTION, step=index
    )
    state = session.question_state if session.question == index else ""
    out = {
        "type": "question.results",
        "question": index,
        "state": state,
        "unit": question.unit,
        **_distribution(
            answers, question.kind, [c.get("text", "") for c in question.choices]
        ),
    }
    if state == ClassSession.Poll.CLOSED:
        if question.kind == Question.Kind.CHOICE:
            out["correct"] = next(
                (i for i, c in enumerate(question.choices) if c.get("correct")), None
            )
        else:
            drawn = class_question(session, question)
            out["answer"] = drawn["answer"]
            out["tolerance"] = drawn["tolerance"]
    return out


def class_question(session: ClassSession, question: Question) -> dict[str, Any]:
    """A question as the class meets it: a drawn question's figures are drawn once
    for the whole class (not per student), so its answers can be compared."""
    seed = question_seed(f"class:{session.code}", session.lesson.slug, question.order)
    return question_draw(question_as_dict(question), seed)


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
        "question": {"index": session.question, "state": session.question_state}
        if session.question_state
        else None,
        "run": str(session.run_id) if session.run_id else None,
        "members": session.members.count(),
        "ended": session.ended_at is not None,
        "version": session.version,
    }


def _shown(answer: ClassAnswer, choices: list[str]) -> str:
    """An answer as the teacher reads it: the choice's words, or the number."""
    if answer.choice is not None:
        return (
            choices[answer.choice]
            if answer.choice < len(choices)
            else str(answer.choice)
        )
    return f"{answer.value:g}"


def _answer_sheet(session: ClassSession):
    """The steps with predictions, the questions, and each member's answers to them."""
    steps = list(session.lesson.steps.exclude(prediction="").order_by("order"))
    questions = list(session.lesson.questions.all())
    answers: dict[tuple[int, str, int], ClassAnswer] = {
        (a.member_id, a.kind, a.step): a
        for a in ClassAnswer.objects.filter(session=session)
    }
    return steps, questions, answers


def members_of(session: ClassSession) -> dict[str, Any]:
    """The teacher's dashboard: each student's place, predictions and answers.

    For the teacher's socket only: it names students. ``moved_s`` is how long ago
    each last moved; one still for ``idle_s`` or more is marked ``idle``.
    """
    steps, questions, answers = _answer_sheet(session)
    now = timezone.now()
    members = []
    for number, member in enumerate(session.members.all(), start=1):
        moved = (now - member.moved_at).total_seconds()
        predictions = {
            str(s.order): _shown(a, s.choices)
            for s in steps
            if (a := answers.get((member.pk, ClassAnswer.Kind.STEP, s.order)))
        }
        replies = {
            str(i): _shown(a, [c.get("text", "") for c in q.choices])
            for i, q in enumerate(questions)
            if (a := answers.get((member.pk, ClassAnswer.Kind.QUESTION, i)))
        }
        members.append(
            {
                "n": number,
                "name": member.name or f"student {number}",
                "step": member.step,
                "moved_s": round(moved, 1),
                "idle": moved >= IDLE_S,
                "predictions": predictions,
                "answers": replies,
            }
        )
    return {"type": "class.members", "idle_s": IDLE_S, "members": members}


def results_csv(session: ClassSession) -> str:
    """The teacher's download: per student, their predictions and answers; then,
    per poll and question, the class's distribution."""
    steps, questions, answers = _answer_sheet(session)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "student",
            *[f"step {s.order + 1}: {s.title}" for s in steps],
            *[
                f"question {i + 1}: {class_question(session, q)['prompt'][:60]}"
                for i, q in enumerate(questions)
            ],
        ]
    )
    for number, member in enumerate(session.members.all(), start=1):
        row = [member.name or f"student {number}"]
        for s in steps:
            a = answers.get((member.pk, ClassAnswer.Kind.STEP, s.order))
            row.append(_shown(a, s.choices) if a else "")
        for i, q in enumerate(questions):
            a = answers.get((member.pk, ClassAnswer.Kind.QUESTION, i))
            row.append(_shown(a, [c.get("text", "") for c in q.choices]) if a else "")
        writer.writerow(row)
    writer.writerow([])
    writer.writerow(["distribution", "answer", "students"])
    for s in steps:
        results = poll_results(session, s.order)
        for label, count in _rows(results):
            writer.writerow([f"step {s.order + 1}: {s.title}", label, count])
        if results["measured"] is not None:
            writer.writerow(
                [
                    f"step {s.order + 1}: {s.title}",
                    "measured",
                    f"{results['measured']:g}",
                ]
            )
    for i, q in enumerate(questions):
        for label, count in _rows(question_results(session, i)):
            writer.writerow([f"question {i + 1}: {q.prompt[:60]}", label, count])
    return out.getvalue()


def _rows(results: dict[str, Any]) -> list[tuple[str, int]]:
    """A distribution as (answer, how many) rows: per choice, or per bin."""
    if results["kind"] == "choice":
        return list(zip(results["choices"], results["counts"], strict=True))
    edges, counts = results["histogram"]["edges"], results["histogram"]["counts"]
    if len(counts) == 1:
        return [(f"{edges[0]:g}", counts[0])]
    return [
        (f"{edges[i]:g} to {edges[i + 1]:g}", count) for i, count in enumerate(counts)
    ]
