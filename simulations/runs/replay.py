"""Timelines: what a run is made of, and replaying it to any of its frames.

A run is fully described by its engine, seed, starting settings, frame rate and
starting speed, and the controls it applied, each with the number of frames made
before it (``seq``) and its simulated time. The engines are deterministic, so
making the same frames (``speed / frame_hz`` simulated seconds each) and applying
the same controls between the same frames gives the very same world: a replay's
figures at a frame are exactly the live run's.

Frame ``N`` is the state after ``N`` frames and every control made before it
(``seq < N``); a control with ``seq == N`` came after frame N went out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..engines import get_engine
from ..engines.base import Engine, EngineError
from ..models import Run, RunControl
from .constants import MAX_SEED, SPEEDS, limits
from .controls import control_parse

MAX_TIMELINE = 10_000  # controls kept per run; a run with more cannot be replayed
TRUNCATED = "timeline.truncated"  # the entry that marks a timeline cut short
PROGRESS_FRAMES = 500
RECORDED = ("pause", "resume", "step", "speed", "set", "command", "reset", "stop")


def max_frames() -> int:
    """The most frames a run can make in its life at the configured rate."""
    cfg = limits()
    return int(cfg["RUN_MAX_LIFE_S"] * cfg["FRAME_HZ"] * 2)


def timeline_of(run: Run) -> dict[str, Any]:
    """Return the run's timeline as JSON (``GET /api/runs/<id>/timeline``).

    Nothing in it says who owns the run. Raise EngineError for a run that has no
    timeline (one made before timelines were kept).
    """
    origin = run.origin or {}
    if "params" not in origin:
        raise EngineError("run", "this run was made before runs kept their timeline")
    rows = list(
        RunControl.objects.filter(run=run)
        .order_by("n")
        .values_list("seq", "t", "control")
    )
    complete = not any(c.get("type") == TRUNCATED for _, _, c in rows)
    last = run.last_seq
    controls = [
        {"seq": seq, "t": t, **control}
        for seq, t, control in rows
        if control.get("type") != TRUNCATED and seq <= last
    ]
    return {
        "run": str(run.id),
        "kind": run.kind,
        "seed": run.seed,
        "params": origin["params"],
        "speed": origin.get("speed", 1.0),
        "frame_hz": origin["frame_hz"],
        "controls": controls,
        "last_seq": last,
        "status": run.status,
        "complete": complete,
    }


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise EngineError(
            field, f"{field} must be an integer from {lo} to {hi}; got {value!r}"
        )
    return value


def check_timeline(data: Any, *, limit: int | None = None) -> dict[str, Any]:
    """Return a timeline read from a file or a request, normalised and checked.

    Every field is checked as the live run checked it, and every control as its
    websocket message was: an error names the field (``controls.3.value``).
    """
    if not isinstance(data, Mapping):
        raise EngineError("timeline", "a timeline must be a JSON object")
    if not data.get("complete", True):
        raise EngineError(
            "complete",
            f"this run made more than {MAX_TIMELINE} changes and only the first "
            f"{MAX_TIMELINE} were kept: it cannot be replayed",
        )
    engine = get_engine(data.get("kind"))
    seed = _int(data.get("seed"), "seed", 0, MAX_SEED)
    params = engine.validate_params(data.get("params") or {})
    hz = _int(data.get("frame_hz"), "frame_hz", 1, 30)
    speed = data.get("speed", 1.0)
    if speed not in SPEEDS or isinstance(speed, bool):
        raise EngineError(
            "speed",
            f"speed must be one of {', '.join(map(str, SPEEDS))}; got {speed!r}",
        )
    frames = limit if limit is not None else max_frames()
    last = _int(data.get("last_seq"), "last_seq", 0, frames)
    raw = data.get("controls") or []
    if not isinstance(raw, list) or len(raw) > MAX_TIMELINE:
        raise EngineError(
            "controls", f"controls must be a list of at most {MAX_TIMELINE} controls"
        )
    controls = []
    before = 0
    for i, entry in enumerate(raw):
        where = f"controls.{i}"
        if not isinstance(entry, Mapping):
            raise EngineError(where, f"{where} must be an object with seq, t and type")
        seq = _int(entry.get("seq"), f"{where}.seq", before, last)
        before = seq
        message = {k: v for k, v in entry.items() if k not in ("seq", "t")}
        try:
            message = control_parse(engine.kind, message)
        except EngineError as exc:
            raise EngineError(f"{where}.{exc.field}", exc.message) from None
        message.pop("ref", None)
        controls.append((seq, message))
    return {
        "kind": engine.kind,
        "seed": seed,
        "params": params,
        "speed": speed,
        "frame_hz": hz,
        "controls": controls,
        "last_seq": last,
    }


class Replay:
    """A run replayed frame by frame: ``to(N)`` brings it to frame N."""

    def __init__(self, timeline: Mapping[str, Any]) -> None:
        self.cls = get_engine(timeline["kind"])
        self.seed = timeline["seed"]
        self.params = dict(timeline["params"])
        self.speed = timeline["speed"]
        self.period = 1.0 / timeline["frame_hz"]
        self.controls = list(timeline["controls"])
        self.engine: Engine = self.cls(self.params, seed=self.seed)
        self.seq = 0
        self.next = 0  # index of the next control to apply
        self.progress: Callable[[], None] | None = None
        self.every = PROGRESS_FRAMES

    def frame(self) -> None:
        self.engine.advance(self.speed * self.period)
        self.seq += 1
        if self.progress is not None and self.seq % self.every == 0:
            self.progress()

    def to(self, seq: int, progress: Callable[[], None] | None = None) -> Engine:
        """Make frames and apply controls up to frame ``seq``; return the engine.

        ``progress`` is called every ``PROGRESS_FRAMES`` frames (a worker renews its
        lease on the run there; it raises to abandon the replay).
        """
        if progress is not None:
            self.progress, self.every = progress, PROGRESS_FRAMES
        while True:
            while self.next < len(self.controls) and self.controls[self.next][0] < seq:
                at, control = self.controls[self.next]
                while self.seq < at:
                    self.frame()
                self.next += 1
                self.apply(control)
            if self.seq >= seq:
                return self.engine
            self.frame()

    def apply(self, control: Mapping[str, Any]) -> None:
        """Apply a control as the run's driver did (``RunDriver._apply``)."""
        action = control["type"]
        if action == "step":
            self.frame()
        elif action == "speed":
            self.speed = control["value"]
        elif action in ("set", "command"):
            try:
                if action == "set":
                    self.engine.set_param(control["name"], control["value"])
                else:
                    self.engine.apply(control["name"], control["args"])
            except EngineError:
                return  # refused live too, with the world as it was
            self.params = dict(self.engine.p)
        elif action == "reset":
            self.engine = self.cls(self.params, seed=self.seed)
        # pause, resume and stop change when frames are made, not what they hold


def replay(timeline: Mapping[str, Any], upto: int | None = None) -> Engine:
    """Return the engine of a checked timeline at frame ``upto`` (its last)."""
    target = timeline["last_seq"] if upto is None else upto
    return Replay(timeline).to(target)
