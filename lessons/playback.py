"""Play a lesson's guided steps headless, as a student pressing each one promptly.

The page plays a step by sending its actions to the live run: settings (``set``)
and commands, each ``after`` its delay in simulated seconds from the moment the step
is pressed. Here every step is pressed the moment the previous step's last action
was sent, so between two presses the world has moved on only by the previous
step's own delays: the soonest a student can press. A step that asks for a
prediction plays on until its figure is read (``settle`` seconds after its last
action), as the page keeps the next step waiting until then; the figure before the
press and when it is read are recorded. What an engine refuses is recorded, naming
the lesson, the step and the action.

As on the page, the first step starts the run (its settings due at once go into the
run's parameters), and a setting that only a new run can take ends the run and
starts another with the parameters so far.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from simulations.engines import get_engine
from simulations.engines.base import Engine, EngineError
from simulations.engines.runner import SET, Step
from simulations.timeline import control_step
from simulations.validation import RUN_CREATE, validate

from .models import Lesson
from .services import lesson_to_dict


@dataclass(frozen=True)
class Refusal:
    """An action of a guided step that the lesson's engine refused."""

    lesson: str
    step: int  # counted from 1, as the page numbers them
    title: str
    action: str
    at: float  # simulated seconds into the run that refused it
    message: str

    def __str__(self) -> str:
        return (
            f"{self.lesson}: step {self.step} ({self.title}), {self.action} "
            f"at {self.at:g} s: {self.message}"
        )


@dataclass(frozen=True)
class Measurement:
    """The figure a step's prediction is compared with, read as the page reads it."""

    step: int  # counted from 1
    title: str
    metric: str
    before: Any  # at the press, or None when the step started the run
    after: Any  # ``settle`` simulated seconds after the step's last action
    at: float

    def __str__(self) -> str:
        before = "new run" if self.before is None else _figure(self.before)
        return (
            f"step {self.step} ({self.title}): {self.metric} {before} -> "
            f"{_figure(self.after)} at {self.at:g} s"
        )


def _figure(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class Playback:
    """What playing one lesson's steps did."""

    lesson: str
    steps: int = 0
    actions: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)


def lesson_play(lesson: dict[str, Any], *, seed: int = 0) -> Playback:
    """Play every guided step of ``lesson`` (in canonical form) in order.

    Return the counts of steps and actions played and every action refused.
    """
    kind = lesson["engine"]
    played = Playback(lesson=lesson["slug"])
    engine: Engine | None = None
    shown = dict(lesson["preset"])  # the settings the page shows, for a new run
    for number, step in enumerate(lesson["steps"], start=1):
        played.steps += 1
        actions = sorted(step["actions"], key=lambda a: a.get("after", 0))
        refused: list[tuple[str, float, EngineError]] = []
        before = (
            engine.metrics().get(step["measure"])
            if engine is not None and step["prediction"]
            else None
        )
        if engine is None or _reshapes(engine, actions):
            before = None
            # The page starts a run, with the settings due at once in its parameters.
            now = [a for a in actions if SET in a and not a.get("after")]
            actions = [a for a in actions if a not in now]
            values = dict(shown)
            for action in now:
                values.update(action[SET])
                played.actions += len(action[SET])
            try:
                engine = _start(kind, values, seed)
            except EngineError as exc:
                engine = None  # a run that was live was stopped to start this one
                refused.append(("start a run", 0.0, exc))
        if engine is not None:
            pressed = engine.now
            played.actions += _play_actions(engine, kind, actions, refused)
            if step["prediction"]:
                last = max((a.get("after", 0) for a in actions), default=0)
                engine.advance_to(pressed + last + step["settle"])
                played.measurements.append(
                    Measurement(
                        number,
                        step["title"],
                        step["measure"],
                        before,
                        engine.metrics().get(step["measure"]),
                        engine.now,
                    )
                )
            shown = dict(engine.p)
        played.refusals += [
            Refusal(lesson["slug"], number, step["title"], action, at, exc.message)
            for action, at, exc in refused
        ]
    return played


def _play_actions(
    engine: Engine,
    kind: str,
    actions: list[dict[str, Any]],
    refused: list[tuple[str, float, EngineError]],
) -> int:
    """Send one step's actions, each at its delay from now; return the controls sent.

    Each control refused is added to ``refused``, and the next ones still go, as on
    the page.
    """
    pressed = engine.now
    sent = 0
    for action in actions:
        at = pressed + action.get("after", 0)
        engine.advance_to(at)
        for message in _controls(action):
            sent += 1
            try:
                control_step(kind, at, message).apply(engine)
            except EngineError as exc:
                refused.append((_describe(message), at, exc))
    return sent


def lessons_play(
    slugs: Iterable[str] = (), *, seed: int = 0
) -> tuple[list[Playback], list[str]]:
    """Play the published lessons, or those named by ``slugs`` whatever their status.

    Return the playbacks in the curriculum's order, and the slugs with no lesson.
    """
    slugs = list(slugs)
    lessons = Lesson.objects.select_related("module").prefetch_related(
        "steps", "questions"
    )
    if slugs:
        lessons = lessons.filter(slug__in=slugs)
    else:
        lessons = lessons.filter(status=Lesson.Status.PUBLISHED)
    found = list(lessons)
    missing = sorted(set(slugs) - {lesson.slug for lesson in found})
    return [lesson_play(lesson_to_dict(x), seed=seed) for x in found], missing


def _reshapes(engine: Engine, actions: list[dict[str, Any]]) -> bool:
    """Whether a setting due at once can only be taken by a new run."""
    return any(
        not engine.param(name).live
        for action in actions
        if SET in action and not action.get("after")
        for name in action[SET]
    )


def _start(kind: str, params: dict[str, Any], seed: int) -> Engine:
    """Return a new world, its parameters checked as the run API checks them."""
    body = validate(RUN_CREATE, {"kind": kind, "params": params, "seed": seed})
    return get_engine(kind)(body["params"], seed=body["seed"])


def _controls(action: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the control messages the page sends for one action, in its order."""
    if SET in action:
        return [
            {"type": SET, "name": name, "value": value}
            for name, value in action[SET].items()
        ]
    return [
        {"type": "command", "name": action["command"], "args": action.get("args", {})}
    ]


def _describe(message: dict[str, Any]) -> str:
    """Name a control as refusals name it: ``set strategy=atomic``, ``deploy``."""
    if message["type"] == SET:
        return Step(0, param=message["name"], value=message["value"]).describe()
    return Step(0, command=message["name"], args=message["args"]).describe()
