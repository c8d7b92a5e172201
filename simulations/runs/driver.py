"""The run service: create runs, check controls, drive a run, keep checkpoints.

Views, tasks and consumers are thin adapters around these functions. A run is
driven by one worker at a time, the holder of its lease; the driver advances the
engine in real time (simulated time = speed x wall time), publishes a frame about
``FRAME_HZ`` times a second, applies controls between frames and checkpoints the
world to the database, so another worker can take over if this one dies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import pickle
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from .engines import get_engine
from .engines.base import Engine, EngineError
from .models import Run
from .transport import TRANSIENT_ERRORS, Transport, get_transport

log = logging.getLogger(__name__)

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MAX_SEED = 2**31 - 1
EVENTS_PER_FRAME = 40
CONTROL_ACTIONS = ("pause", "resume", "speed", "set", "command", "reset", "stop")
LIVE = (Run.Status.RUNNING, Run.Status.PAUSED)


class QuotaError(EngineError):
    """A visitor already has as many live runs as allowed."""


def limits() -> dict[str, int]:
    return settings.SCALELAB


# Creating and reading runs ------------------------------------------------


def run_create(
    *,
    kind: Any,
    params: Any = None,
    seed: Any = None,
    owner=None,
    visitor: str = "",
    lesson: str = "",
) -> Run:
    """Validate and create a run, then hand it to a worker once committed."""
    if not isinstance(kind, str):
        raise EngineError("kind", "kind must be a string naming an engine")
    engine = get_engine(kind)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise EngineError(
            "params", "params must be an object of parameter names and values"
        )
    values = engine.validate_params(params)
    if seed is None:
        seed = secrets.randbelow(MAX_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise EngineError(
            "seed", f"seed must be an integer from 0 to {MAX_SEED}; got {seed!r}"
        )
    quota = limits()["RUNS_PER_VISITOR"]
    with transaction.atomic():
        if live_runs_of(owner, visitor).count() >= quota:
            raise QuotaError(
                "runs",
                f"at most {quota} live runs per visitor: stop one of yours to start another",
            )
        run = Run.objects.create(
            kind=kind,
            params=values,
            seed=seed,
            visitor=visitor,
            lesson=lesson[:100],
            owner=owner if owner is not None and owner.is_authenticated else None,
        )
        transaction.on_commit(lambda: dispatch(str(run.id)))
    return run


def live_runs_of(owner, visitor: str):
    runs = Run.objects.filter(status__in=LIVE)
    if owner is not None and owner.is_authenticated:
        return runs.filter(owner=owner)
    return runs.filter(owner__isnull=True, visitor=visitor)


def can_control(run: Run, user, visitor: str) -> bool:
    """Only a run's owner controls it; anyone with its link may watch."""
    if run.owner_id is not None:
        return user is not None and user.is_authenticated and user.pk == run.owner_id
    return bool(visitor) and secrets.compare_digest(run.visitor, visitor)


def run_status(run: Run) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "kind": run.kind,
        "params": run.params,
        "seed": run.seed,
        "status": run.status,
        "speed": run.speed,
        "created_at": run.created_at.isoformat(),
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "stop_reason": run.stop_reason,
        "last_seq": run.last_seq,
        "ws_url": f"/ws/runs/{run.id}/",
    }


def dispatch(run_id: str) -> None:
    from .tasks import drive_run

    drive_run.delay(run_id)


# Controls ------------------------------------------------------------------


def control_parse(kind: str, message: Any) -> dict[str, Any]:
    """Validate a control message against the run's engine; return it normalised."""
    if not isinstance(message, dict):
        raise EngineError("type", "a message must be a JSON object with a type")
    action = message.get("type")
    if action not in CONTROL_ACTIONS:
        allowed = ", ".join((*CONTROL_ACTIONS, "seen", "ping"))
        raise EngineError("type", f"unknown message type {action!r}; types: {allowed}")
    engine = get_engine(kind)
    if action == "speed":
        value = message.get("value")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or float(value) not in SPEEDS
        ):
            raise EngineError(
                "value", "speed must be one of " + ", ".join(f"{s:g}" for s in SPEEDS)
            )
        return {"type": "speed", "value": float(value)}
    if action == "set":
        name = message.get("name")
        if not isinstance(name, str):
            raise EngineError("name", "set needs the name of a parameter")
        param = engine.param(name)
        return {
            "type": "set",
            "name": name,
            "value": param.coerce(message.get("value")),
        }
    if action == "command":
        name = message.get("name")
        if not isinstance(name, str):
            raise EngineError("name", "command needs the name of a command")
        args = message.get("args") or {}
        if not isinstance(args, dict):
            raise EngineError(
                "args", "args must be an object of argument names and values"
            )
        return {
            "type": "command",
            "name": name,
            "args": engine.command(name).coerce_args(args),
        }
    return {"type": action}


def control_send(
    run_id: str, control: dict[str, Any], transport: Transport | None = None
) -> None:
    (transport or get_transport()).push_control(run_id, control)


# Checkpoints -----------------------------------------------------------------


def seal(state: dict[str, Any]) -> bytes:
    """Pickle ``state`` and sign it, so only what this app wrote is ever unpickled."""
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    mac = hmac.new(settings.SECRET_KEY.encode(), blob, hashlib.sha256).digest()
    return mac + blob


def unseal(data: bytes) -> dict[str, Any]:
    data = bytes(data)
    mac, blob = data[:32], data[32:]
    expected = hmac.new(settings.SECRET_KEY.encode(), blob, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise ValueError("checkpoint signature does not match")
    return pickle.loads(blob)  # noqa: S301 - signed above


# The driver -------------------------------------------------------------------


class RunFailed(Exception):
    """The run cannot go on; the message says why, for its viewers."""


@dataclass
class Clock:
    """Wall time and sleeping, replaceable in tests."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class RunDriver:
    """Advance one run in real time while this process holds its lease."""

    def __init__(
        self,
        run_id: str,
        transport: Transport | None = None,
        clock: Clock | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.run_id = str(run_id)
        self.transport = transport or get_transport()
        self.clock = clock or Clock()
        self.stopping = stopping or threading.Event()
        # Who holds a lease is readable in Redis: host, process id, and a nonce.
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        cfg = limits()
        self.period = 1.0 / cfg["FRAME_HZ"]
        self.lease_s = float(cfg["LEASE_S"])
        self.checkpoint_s = float(cfg["CHECKPOINT_S"])
        self.idle_s = float(cfg["RUN_IDLE_S"])
        self.max_life_s = float(cfg["RUN_MAX_LIFE_S"])
        self._held: list[tuple[int, int, str]] | None = None

    # lifecycle

    def drive(self) -> str:
        """Drive the run until it ends, the lease is lost or the worker stops."""
        if not self.transport.acquire(self.run_id, self.token, self.lease_s):
            return "leased elsewhere"
        try:
            if not self._load():
                return "not live"
            _release_db()
            return self._loop()
        except RunFailed as exc:
            log.error("run %s: %s", self.run_id, exc)
            self._fail(str(exc))
            return "failed"
        except (DatabaseError, *TRANSIENT_ERRORS):
            raise  # the database or Redis is away: the run resumes when it is back
        except Exception:
            # A fault in an engine would recur on every worker that resumed the
            # run from the same checkpoint; end it once, visibly, instead.
            log.exception("run %s: the simulation failed", self.run_id)
            self._fail("the simulation stopped on an internal error; start a new run")
            return "failed"
        finally:
            self.transport.release(self.run_id, self.token)

    def _fail(self, reason: str) -> None:
        Run.objects.filter(id=self.run_id, status__in=LIVE).update(
            status=Run.Status.FAILED, ended_at=timezone.now(), stop_reason=reason
        )
        _release_db()
        seq, sub = self.transport.last_id(self.run_id)
        message: dict[str, Any] = {
            "type": "status",
            "seq": seq,
            "sub": sub + 1,
            "status": "failed",
            "reason": reason,
        }
        if hasattr(self, "engine"):
            message["t"] = round(self.engine.now, 6)
        self.transport.publish(self.run_id, seq, sub + 1, json.dumps(message))

    def _load(self) -> bool:
        run = Run.objects.filter(id=self.run_id).first()
        if run is None or run.status not in LIVE:
            return False
        self.run = run
        self.engine_cls = get_engine(run.kind)
        if run.checkpoint:
            try:
                state = unseal(run.checkpoint)
                self.engine: Engine = Engine.restore(state["engine"])
            except Exception as exc:
                raise RunFailed(
                    "its saved state cannot be restored (it was written by another "
                    "version of the engine or under another SECRET_KEY); "
                    "start a new run"
                ) from exc
            self.seq = state["seq"]
            self.speed = state["speed"]
            self.paused = state["paused"]
            self.params = state["params"]
        else:
            self.params = dict(run.params)
            self.engine = self.engine_cls(self.params, seed=run.seed)
            self.seq = 0
            self.speed = run.speed
            self.paused = run.status == Run.Status.PAUSED
        self.sub = 0
        # Frames after the checkpoint may have gone out before a crash: they are
        # regenerated identically (the engine is deterministic) but not resent.
        self.published = self.transport.last_id(self.run_id)[0]
        return True

    def _loop(self) -> str:
        """Pace frames; ride out a short outage of the transport (Redis restarting)."""
        while True:
            try:
                return self._pace()
            except TRANSIENT_ERRORS as exc:
                log.warning(
                    "run %s: transport unavailable (%s); retrying", self.run_id, exc
                )
                if self.stopping.wait(0.5):
                    return "worker stopping"

    def _pace(self) -> str:
        clock = self.clock
        start = clock.monotonic()
        next_tick = start
        last_housekeeping = -math.inf
        last_checkpoint = start
        self.last_viewer_at = start
        self._status("running" if not self.paused else "paused", resumed=self.seq > 0)
        while True:
            if self.stopping.is_set():
                self._checkpoint()
                return "worker stopping"
            caught_up = self.seq >= self.published
            controls = self.transport.pop_controls(self.run_id) if caught_up else []
            if controls:
                # Statuses are held until the checkpoint is written, so a viewer
                # told "paused" (or shown a new parameter) never reloads the page
                # to find the database still saying otherwise.
                self._held = []
                try:
                    ended = self._apply_controls(controls)
                    self._checkpoint()
                finally:
                    held, self._held = self._held, None
                    for seq, sub, text in held:
                        self.transport.publish(self.run_id, seq, sub, text)
                last_checkpoint = clock.monotonic()
                if ended:
                    return "stopped"
            now = clock.monotonic()
            if now - last_housekeeping >= 1.0:
                last_housekeeping = now
                outcome = self._housekeeping(now)
                if outcome:
                    return outcome
            if now - last_checkpoint >= self.checkpoint_s:
                self._checkpoint()
                last_checkpoint = now
            if not self.paused:
                self._frame()
                if self.seq <= self.published:
                    continue  # catching up after a resume: no pacing for frames already sent
            next_tick += self.period
            delay = next_tick - clock.monotonic()
            if delay > 0:
                clock.sleep(delay)
            elif delay < -1.0:
                next_tick = (
                    clock.monotonic()
                )  # far behind (a stall): skip, do not burst

    def _frame(self) -> None:
        events = self.engine.advance(self.speed * self.period)
        self.seq += 1
        self.sub = 0
        if len(events) > EVENTS_PER_FRAME:
            dropped = len(events) - EVENTS_PER_FRAME
            events = events[:EVENTS_PER_FRAME] + [
                {"type": "events.truncated", "count": dropped}
            ]
        if self.seq <= self.published:
            return
        frame = {
            "type": "frame",
            "seq": self.seq,
            "t": round(self.engine.now, 6),
            "metrics": self.engine.metrics(),
            "events": events,
            "speed": self.speed,
            "ts": time.time(),
        }
        self.transport.publish(
            self.run_id, self.seq, 0, json.dumps(frame, separators=(",", ":"))
        )

    def _status(self, status: str, **extra: Any) -> None:
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
        text = json.dumps(message)
        if self._held is not None:
            self._held.append((self.seq, self.sub, text))
        else:
            self.transport.publish(self.run_id, self.seq, self.sub, text)

    def _apply_controls(self, controls: list[dict[str, Any]]) -> bool:
        """Apply controls in order; return True when the run was stopped."""
        for control in controls:
            try:
                control = control_parse(self.run.kind, control)
            except EngineError as exc:  # checked at the door; this is a second line
                log.warning(
                    "run %s: dropped invalid control %r: %s", self.run_id, control, exc
                )
                continue
            action = control["type"]
            if action == "pause" and not self.paused:
                self.paused = True
                self._status("paused")
            elif action == "resume" and self.paused:
                self.paused = False
                self._status("running")
            elif action == "speed":
                self.speed = control["value"]
                self._status("paused" if self.paused else "running")
            elif action == "set":
                try:
                    events = self.engine.set_param(control["name"], control["value"])
                except EngineError as exc:
                    self._status(
                        self._state(),
                        error={"field": exc.field, "message": exc.message},
                    )
                    continue
                self.params = dict(self.engine.p)
                self._status(
                    self._state(),
                    changed={control["name"]: control["value"]},
                    events=events,
                    params=self.params,
                )
            elif action == "command":
                try:
                    events = self.engine.apply(control["name"], control["args"])
                except EngineError as exc:
                    self._status(
                        self._state(),
                        error={"field": exc.field, "message": exc.message},
                    )
                    continue
                self.params = dict(self.engine.p)
                # A command may change parameters too (add_shard, resize...).
                self._status(
                    self._state(),
                    command=control["name"],
                    events=events,
                    params=self.params,
                )
            elif action == "reset":
                self.engine = self.engine_cls(self.params, seed=self.run.seed)
                self._status(self._state(), reset=True)
            elif action == "stop":
                self._end(Run.Status.STOPPED, "stopped by its owner")
                return True
        return False

    def _state(self) -> str:
        return "paused" if self.paused else "running"

    def _housekeeping(self, now: float) -> str | None:
        if not self.transport.renew(self.run_id, self.token, self.lease_s):
            log.warning("run %s: lease lost; another worker drives it now", self.run_id)
            return "lease lost"
        if self.transport.viewers(self.run_id) > 0:
            self.last_viewer_at = now
        elif now - self.last_viewer_at >= self.idle_s:
            self._end(Run.Status.STOPPED, f"no viewer for {self.idle_s:g} s")
            return "idle"
        age = (timezone.now() - self.run.created_at).total_seconds()
        if age >= self.max_life_s:
            self._end(
                Run.Status.STOPPED,
                f"reached the maximum run life of {self.max_life_s:g} s",
            )
            return "expired"
        return None

    def _checkpoint(self, **fields: Any) -> None:
        state = {
            "engine": self.engine.snapshot(),
            "seq": self.seq,
            "speed": self.speed,
            "paused": self.paused,
            "params": self.params,
        }
        status = fields.pop("status", self._state())
        Run.objects.filter(id=self.run_id, status__in=LIVE).update(
            checkpoint=seal(state),
            checkpoint_seq=self.seq,
            checkpoint_at=timezone.now(),
            last_seq=self.seq,
            speed=self.speed,
            params=self.params,
            status=status,
            **fields,
        )
        _release_db()

    def _end(self, status: str, reason: str) -> None:
        self._checkpoint(status=status, ended_at=timezone.now(), stop_reason=reason)
        self._status(status, reason=reason)


def _release_db() -> None:
    """Give the database connection back between checkpoints.

    A worker drives up to hundreds of runs on threads; each thread holding a
    connection for the life of its run would exhaust PostgreSQL's limit.
    """
    if not connection.in_atomic_block:
        connection.close()


# Supervision ------------------------------------------------------------------


def supervise_once(transport: Transport | None = None) -> list[str]:
    """Hand every live run that no worker holds to a worker; return their ids.

    A worker that dies stops renewing its leases; within a lease period its runs
    show up here and resume from their checkpoints elsewhere. Nothing relies on
    the broker redelivering a lost task.
    """
    transport = transport or get_transport()
    ids = [
        str(i) for i in Run.objects.filter(status__in=LIVE).values_list("id", flat=True)
    ]
    orphans = [r for r, held in transport.leased(ids).items() if not held]
    started = []
    for run_id in orphans:
        if transport.claim_dispatch(run_id, limits()["LEASE_S"] * 2):
            dispatch(run_id)
            started.append(run_id)
    return started


class Supervisor(threading.Thread):
    """A daemon thread calling ``supervise_once`` every second."""

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(name="scalelab-supervisor", daemon=True)
        self.interval = interval
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            try:
                supervise_once()
            except Exception:  # a database or Redis hiccup: try again next second
                log.exception("supervisor pass failed")
            finally:
                close_old_connections()
