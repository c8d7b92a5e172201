"""One run's world and pacing: frames, controls, housekeeping. No thread of its own.

The scheduler of a worker process calls a driver when its next frame is due; the
driver advances its engine by ``speed x period`` of simulated time, queues the frame
in its outbox, and applies the controls that the previous tick read from its inbox.
The store loads drivers from the database and saves their checkpoints. A status
that a control causes is held until the checkpoint after the control is written, so
a viewer told "paused" never reloads the page to find the database still saying
otherwise, and a takeover never undoes a control.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from ..engines import get_engine
from ..engines.base import Engine, EngineError
from ..models import Run
from ..transport import Id
from .constants import EVENTS_PER_FRAME
from .controls import control_parse
from .replay import MAX_TIMELINE, RECORDED, TRUNCATED

log = logging.getLogger(__name__)


def engine_frame(engine: Engine, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Return what a frame says of the world: its time, figures, theory, picture."""
    frame: dict[str, Any] = {
        "t": round(engine.now, 6),
        "metrics": engine.metrics(),
        "events": events,
    }
    theory, gaps = engine.theory()
    if theory or gaps:
        frame["theory"] = theory
    if gaps:
        frame["theory_gaps"] = gaps
    names = engine.theory_names() if theory else {}
    if names:
        frame["theory_models"] = names
    picture = engine.picture()
    if picture is not None:
        frame["picture"] = picture
    return frame


class RunDriver:
    """A live run as one worker drives it."""

    def __init__(
        self,
        run: Run,
        engine: Engine,
        *,
        seq: int,
        speed: float,
        paused: bool,
        params: dict[str, Any],
        published: Id,
        period: float,
        timeline_base: int = 0,
    ) -> None:
        self.run_id = str(run.id)
        self.kind = run.kind
        self.seed = run.seed
        self.created_ts = run.created_at.timestamp()
        self.engine_cls = get_engine(run.kind)
        self.engine = engine
        self.seq = seq
        self.sub = 0
        self.speed = speed
        self.paused = paused
        self.params = params
        self.period = period
        # What the run's stream already holds: frames up to it are regenerated
        # (the engine is deterministic) but not sent again.
        self.published = published
        self.prev: Id = published  # the id of the last entry this driver sent
        self.outbox: list[tuple[Id, str]] = []
        self.held: list[tuple[Id, str]] | None = None
        self.controls: list[dict[str, Any]] = []
        self.ended: tuple[str, str] | None = None  # (status, reason) once it ends
        self.outcome = ""  # what ended it, in a word, for the logs and the tests
        # Pacing and housekeeping times, on the scheduler's monotonic clock.
        self.next_at = 0.0
        self.housekeeping_at = 0.0
        self.checkpoint_at = 0.0
        self.last_viewer_at = 0.0
        self.scheduled = False  # in the scheduler's heap
        self.saving = 0  # version of the checkpoint this driver waits for, 0 for none
        self.version = 0
        # The run's timeline (``replay``): the database holds its first
        # ``timeline_base`` controls; the ones after wait for a checkpoint to hold
        # them, and ``timeline_marks`` says which checkpoint holds how many.
        self.timeline_base = timeline_base
        self.timeline: list[tuple[int, float, dict[str, Any]]] = []
        self.timeline_marks: list[tuple[int, int]] = []

    # frames

    def catch_up(self) -> None:
        """Regenerate, without sending, the frames a previous holder already sent."""
        while not self.paused and self.seq < self.published[0]:
            self.frame()
        if self.seq == self.published[0]:
            self.sub = self.published[1]  # statuses after that frame went out too

    def frame(self) -> None:
        events = self.engine.advance(self.speed * self.period)
        self.seq += 1
        self.sub = 0
        if self.seq <= self.published[0]:
            return
        if len(events) > EVENTS_PER_FRAME:
            dropped = len(events) - EVENTS_PER_FRAME
            events = events[:EVENTS_PER_FRAME] + [
                {"type": "events.truncated", "count": dropped}
            ]
        frame = {"type": "frame", "seq": self.seq, **engine_frame(self.engine, events)}
        frame.update(speed=self.speed, ts=time.time())
        self.outbox.append(((self.seq, 0), json.dumps(frame, separators=(",", ":"))))

    def status(self, status: str, **extra: Any) -> None:
        self.sub += 1
        message = {
            "type": "status",
            "seq": self.seq,
            "sub": self.sub,
            "status": status,
            "speed": self.speed,
            "t": round(self.engine.now, 6),
            **extra,
        }
        entry = ((self.seq, self.sub), json.dumps(message))
        (self.held if self.held is not None else self.outbox).append(entry)

    def failed(self, reason: str) -> None:
        self.sub += 1
        message = {
            "type": "status",
            "seq": self.seq,
            "sub": self.sub,
            "status": "failed",
            "reason": reason,
            "t": round(self.engine.now, 6),
        }
        self.ended = (Run.Status.FAILED, reason)
        self.outcome = "failed"
        self.held = [((self.seq, self.sub), json.dumps(message))]

    def take_outbox(self) -> list[tuple[Id, str]]:
        out, self.outbox = self.outbox, []
        return out

    def release_held(self) -> None:
        """The checkpoint is written: what it was waiting for may go out."""
        if self.held:
            self.outbox.extend(self.held)
        self.held = None
        self.saving = 0

    # controls

    def state(self) -> str:
        return Run.Status.PAUSED if self.paused else Run.Status.RUNNING

    def apply_controls(self) -> bool:
        """Apply the controls read last tick; return True if any was applied."""
        controls, self.controls = self.controls, []
        if not controls:
            return False
        # Statuses wait for the checkpoint that records what they announce.
        self.held = []
        for control in controls:
            try:
                control = control_parse(self.kind, control)
            except EngineError as exc:  # checked at the door; this is a second line
                log.warning(
                    "run %s: dropped invalid control %r: %s", self.run_id, control, exc
                )
                continue
            self._apply(control)
            if self.ended:
                break
        return True

    def record(self, control: dict[str, Any]) -> None:
        """Add a control to the run's timeline, at the frame and time it took effect."""
        count = self.timeline_base + len(self.timeline)
        if count > MAX_TIMELINE:
            return
        if count == MAX_TIMELINE:
            control = {"type": TRUNCATED}
        entry = {k: v for k, v in control.items() if k != "ref"}
        self.timeline.append((self.seq, round(self.engine.now, 6), entry))

    def confirmed(self, version: int) -> None:
        """The checkpoint ``version`` is written: the controls it held are saved."""
        upto = None
        while self.timeline_marks and self.timeline_marks[0][0] <= version:
            upto = self.timeline_marks.pop(0)[1]
        if upto is not None and upto > self.timeline_base:
            del self.timeline[: upto - self.timeline_base]
            self.timeline_base = upto

    def _apply(self, control: dict[str, Any]) -> None:
        action = control["type"]
        if action in RECORDED and not self._no_op(control):
            self.record(control)
        if action == "pause" and not self.paused:
            self.paused = True
            self.status("paused")
        elif action == "resume" and self.paused:
            self.paused = False
            self.status("running")
        elif action == "step":
            if not self.paused:
                self.status(
                    self.state(),
                    error={
                        "field": "type",
                        "message": "step: pause the run first, then step it a frame at a time",
                    },
                )
                return
            # One frame, as a running run would make next (the same slice of
            # simulated time), so a takeover that regenerates it agrees.
            self.frame()
            self.status("paused", stepped=self.seq)
        elif action == "speed":
            self.speed = control["value"]
            self.status(self.state())
        elif action in ("set", "command"):
            try:
                if action == "set":
                    events = self.engine.set_param(control["name"], control["value"])
                else:
                    events = self.engine.apply(control["name"], control["args"])
            except EngineError as exc:
                self.status(
                    self.state(), error={"field": exc.field, "message": exc.message}
                )
                return
            # A command may change parameters too (add_shard, resize...).
            self.params = dict(self.engine.p)
            detail: dict[str, Any] = (
                {"changed": {control["name"]: control["value"]}}
                if action == "set"
                else {"command": control["name"]}
            )
            self.status(self.state(), **detail, events=events, params=self.params)
        elif action == "reset":
            self.engine = self.engine_cls(self.params, seed=self.seed)
            self.status(self.state(), reset=True)
        elif action == "stop":
            self.end(Run.Status.STOPPED, "stopped by its owner", "stopped")

    def _no_op(self, control: dict[str, Any]) -> bool:
        """A control that changes nothing: pausing a paused run, stepping a running one."""
        action = control["type"]
        return (
            (action == "pause" and self.paused)
            or (action == "resume" and not self.paused)
            or (action == "step" and not self.paused)
        )

    def end(self, status: str, reason: str, outcome: str) -> None:
        """End the run; what announces it waits for the checkpoint that records it."""
        if self.held is None:
            self.held = []
        self.ended = (status, reason)
        self.outcome = outcome
        self.status(status, reason=reason)

    # checkpoints

    def checkpoint(self) -> dict[str, Any]:
        """Return the fields of the run's row to save, its sealed state included."""
        self.version += 1
        fields: dict[str, Any] = {
            "last_seq": self.seq,
            "speed": self.speed,
            "params": self.params,
            "status": self.state(),
        }
        if self.timeline:
            fields["timeline"] = (self.timeline_base, list(self.timeline))
            self.timeline_marks.append(
                (self.version, self.timeline_base + len(self.timeline))
            )
        if self.ended:
            fields["status"], fields["stop_reason"] = self.ended
        if self.ended is None or self.ended[0] != Run.Status.FAILED:
            # A broken world is not worth restoring, nor always able to pickle.
            fields["state"] = {
                "engine": self.engine.snapshot(),
                "seq": self.seq,
                "speed": self.speed,
                "paused": self.paused,
                "params": self.params,
            }
        return fields
