"""The engine contract: declared parameters, commands, events and metrics.

Engines are pure Python and deterministic: the same parameters, seed and command
timeline give the same frames. Nothing here imports Django, Celery or Channels.
"""

from __future__ import annotations

import math
import pickle
import random
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

Event = dict[str, Any]


class EngineError(ValueError):
    """Bad input for an engine, naming the field at fault and what it accepts."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ParamError(EngineError):
    """A parameter is unknown or its value is out of its declared range."""


class CommandError(EngineError):
    """A command is unknown or one of its arguments is invalid."""


PARAM_TYPES = ("int", "float", "choice", "bool")
TINY = 1e-100  # the smallest size a number setting may have, other than 0
TICK = 0.25  # seconds: the finest slice of time that ``advance`` hands an engine
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Param:
    """One declared, bounded input of an engine or of a command."""

    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    help: str = ""
    label: str = ""
    step: float | None = None
    live: bool = True  # False: it shapes the whole world, so only a new run takes it
    # Words for the value ``min`` where it stands for none chosen ("every page"), so
    # that no form shows a bare -1.
    unset: str = ""

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise TypeError(f"{self.name}: type must be one of {PARAM_TYPES}")
        if self.type == "choice" and self.default not in self.choices:
            raise TypeError(f"{self.name}: default {self.default!r} not in choices")
        if self.unset and (self.type != "int" or self.min is None):
            raise TypeError(f"{self.name}: only an integer's minimum can mean unset")

    def allowed(self) -> str:
        """Describe the accepted values in words, for error messages and help."""
        if self.type == "choice":
            return "one of " + ", ".join(self.choices)
        if self.type == "bool":
            return "true or false"
        kind = "an integer" if self.type == "int" else "a number"
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and self.max is not None:
            return f"{kind} from {_fmt(self.min)} to {_fmt(self.max)}{unit}"
        if self.min is not None:
            return f"{kind} of at least {_fmt(self.min)}{unit}"
        if self.max is not None:
            return f"{kind} of at most {_fmt(self.max)}{unit}"
        return kind

    def coerce(self, value: Any) -> Any:
        """Return ``value`` converted to this parameter's type, or raise ParamError."""
        bad = ParamError(
            self.name, f"{self.name} must be {self.allowed()}; got {value!r}"
        )
        if self.type == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise bad
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise bad
        if isinstance(value, bool):
            raise bad
        try:
            if self.type == "int":
                if isinstance(value, float):
                    if not value.is_integer():
                        raise bad
                    number: float = int(value)
                else:
                    number = (
                        int(str(value).strip())
                        if isinstance(value, str)
                        else int(value)
                    )
            else:
                number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise bad from None
        if isinstance(number, float) and not math.isfinite(number):
            raise bad
        if isinstance(number, float) and 0 < abs(number) < TINY:
            # 5e-324 is a float, but one that turns rates into divisions by zero
            # and gaps into infinities: no setting means anything that small.
            raise ParamError(
                self.name,
                f"{self.name} must be {self.allowed()}, and 0 or at least {TINY:g} "
                f"in size; got {value!r}",
            )
        if self.min is not None and number < self.min:
            raise bad
        if self.max is not None and number > self.max:
            raise bad
        return number

    def describe(self) -> dict[str, Any]:
        """Return the declaration as JSON, for the web controls, admin and CLI."""
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "choices": list(self.choices),
            "unit": self.unit,
            "help": self.help,
            "label": self.label or self.name.replace("_", " ").capitalize(),
            "step": self.step,
            "allowed": self.allowed(),
            "live": self.live,
            "unset": self.unset,
        }


@dataclass(frozen=True)
class Command:
    """Something a user can do to a running world: crash a cache, kill a server."""

    name: str
    label: str
    help: str = ""
    args: tuple[Param, ...] = ()

    def coerce_args(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return the validated arguments, defaults filled in, or raise CommandError."""
        raw = dict(raw or {})
        known = {a.name: a for a in self.args}
        for name in raw:
            if name not in known:
                allowed = ", ".join(known) or "none"
                raise CommandError(
                    f"{self.name}.{name}",
                    f"{self.name} has no argument {name!r}; its arguments: {allowed}",
                )
        out = {}
        for arg in self.args:
            try:
                out[arg.name] = (
                    arg.coerce(raw[arg.name]) if arg.name in raw else arg.default
                )
            except ParamError as exc:
                raise CommandError(
                    f"{self.name}.{arg.name}", f"{self.name}: {exc.message}"
                ) from None
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "help": self.help,
            "args": [a.describe() for a in self.args],
        }


@dataclass(frozen=True)
class Metric:
    """A figure an engine reports; ``summary`` ones are printed by ``simulate``."""

    name: str
    label: str
    unit: str = ""
    help: str = ""
    summary: bool = True
    # Words the page shows for the value -1 where it stands for none ("no hot key").
    unset: str = ""
    # Words the page shows for a value given as a name: (("app", "App servers"), ...).
    words: tuple[tuple[str, str], ...] = ()

    def describe(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "label": self.label,
            "unit": self.unit,
            "help": self.help,
            "summary": self.summary,
            "unset": self.unset,
        }
        if self.words:
            out["words"] = dict(self.words)
        return out


THEORY_CACHE_SIZE = 512  # results kept per process, across runs and engines
_theory_cache: OrderedDict[tuple[Any, ...], Theory] = OrderedDict()
_theory_names: dict[tuple[Any, ...], dict[str, str]] = {}
_theory_lock = threading.Lock()
Theory = tuple[dict[str, float], dict[str, str]]
# What compute_theory returns: a value, a value with the model it came from, or
# a sentence saying why there is none.
TheoryFigures = dict[str, float | str | tuple[float, str]]


def _significant(value: float) -> float:
    return float(f"{value:.6g}")


def merge_counts(events: list[Event]) -> list[Event]:
    """Fold events that carry only a type and a count into one per type."""
    merged: list[Event] = []
    counted: dict[str, Event] = {}
    for event in events:
        if event.keys() == {"type", "count"}:
            if event["type"] in counted:
                counted[event["type"]]["count"] += event["count"]
                continue
            event = dict(event)
            counted[event["type"]] = event
        merged.append(event)
    return merged


class Window:
    """Totals over the last ``span`` simulated seconds, kept in fixed buckets.

    Live charts show recent figures (the hit ratio over the last few seconds);
    summaries use counters since the statistics were last reset.
    """

    def __init__(self, span: float = 3.0, bucket: float = TICK) -> None:
        self.span = span
        self.bucket = bucket
        self.buckets: list[tuple[int, dict[str, float]]] = []

    def add(self, t: float, **amounts: float) -> None:
        """Add ``amounts`` to the bucket holding time ``t`` (a slice's start time)."""
        index = int(t / self.bucket)
        if self.buckets and self.buckets[-1][0] == index:
            totals = self.buckets[-1][1]
            for name, amount in amounts.items():
                totals[name] = totals.get(name, 0.0) + amount
        else:
            self.buckets.append((index, dict(amounts)))
        while self.buckets and self.buckets[0][0] <= index - self._count():
            self.buckets.pop(0)

    def _count(self) -> int:
        return max(1, round(self.span / self.bucket))

    def _first(self, now: float) -> int:
        last = math.ceil(now / self.bucket) - 1
        return last - self._count() + 1

    def total(self, name: str, now: float) -> float:
        """Return the total of ``name`` over the window ending at ``now``."""
        first = self._first(now)
        total: float = 0  # as sum() starts: the same additions in the same order
        for index, totals in self.buckets:  # a plain loop: metrics() runs every frame
            if index >= first:
                total += totals.get(name, 0.0)
        return total

    def seconds(self, now: float) -> float:
        """Return the simulated time the window covers (at most ``span``)."""
        start = max(self._first(now) * self.bucket, 0.0)
        return max(now - start, 1e-9)

    def clear(self) -> None:
        self.buckets.clear()


class Engine:
    """A simulated world that advances in time and reacts to commands.

    Subclasses declare ``kind``, ``title``, ``params``, ``commands``,
    ``event_types`` and ``metric_specs``, and implement ``setup``, ``run_until``,
    ``metrics`` and ``reset_stats``; a command ``name`` is handled by a method
    ``on_<name>(**args)`` returning a list of events.

    State is everything in ``__dict__``: ``snapshot()`` pickles it and
    ``restore()`` gives back an engine whose continuation is identical. Attributes
    named in ``derived`` are rebuilt from the parameters by ``rebuild()`` instead
    of being saved.
    """

    kind: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    commands: ClassVar[tuple[Command, ...]] = ()
    event_types: ClassVar[tuple[str, ...]] = ()
    metric_specs: ClassVar[tuple[Metric, ...]] = ()
    derived: ClassVar[tuple[str, ...]] = ()
    # What ``processed`` counts, for the speed benchmark: simulated "events", or
    # "queries" for an engine that runs real SQL.
    bench_unit: ClassVar[str] = "events"
    # Event types sent every frame as telemetry (lag per replica, rebuild
    # progress): charts use them, the page's event log leaves them out.
    quiet_events: ClassVar[tuple[str, ...]] = ()
    # A sentence for each notable event type, read out and logged for people:
    # ``{field}`` is the event's field, ``{field?yes words|no words}`` picks by
    # the field's truth, ``{field#noun}`` (or ``{field#noun|nouns}``) counts a
    # noun and ``{field%}`` shows a fraction as a percentage. Events folded into
    # counts and quiet ones need none.
    narration: ClassVar[Mapping[str, str]] = {}
    # The metrics that closed-form theory predicts, each with the model's name in
    # words ("Erlang C (M/M/c)"): the charts draw them as dashed "theory" lines.
    theory_models: ClassVar[Mapping[str, str]] = {}
    # Metrics timed on the wall clock (real queries), not simulated: the only ones
    # a replay measures again rather than reproduces.
    wall_clock_metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        self.p: dict[str, Any] = self.validate_params(params or {})
        self.seed = int(seed)
        self.rng = random.Random(self.seed)
        self.now = 0.0
        # Simulated happenings handled so far (arrivals, departures, heartbeats...):
        # the unit of the engines' speed benchmark.
        self.processed = 0
        self.rebuild()
        self.setup()

    # Declarations -----------------------------------------------------------

    @classmethod
    def param(cls, name: str) -> Param:
        for p in cls.params:
            if p.name == name:
                return p
        allowed = ", ".join(p.name for p in cls.params) or "none"
        raise ParamError(
            name, f"{cls.kind} has no parameter {name!r}; its parameters: {allowed}"
        )

    @classmethod
    def command(cls, name: str) -> Command:
        for c in cls.commands:
            if c.name == name:
                return c
        allowed = ", ".join(c.name for c in cls.commands) or "none"
        raise CommandError(
            name, f"{cls.kind} has no command {name!r}; its commands: {allowed}"
        )

    @classmethod
    def validate_params(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Return every parameter, defaults filled in, or raise ParamError."""
        values = {}
        for name in raw:
            cls.param(name)
        for p in cls.params:
            values[p.name] = p.coerce(raw[p.name]) if p.name in raw else p.default
        cls.check_params(values)
        return values

    @classmethod
    def check_params(cls, values: dict[str, Any]) -> None:
        """Check rules that join several parameters; raise ParamError naming one."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Return the whole declaration as JSON (web controls, admin form, CLI)."""
        return {
            "kind": cls.kind,
            "title": cls.title,
            "description": cls.description,
            "params": [p.describe() for p in cls.params],
            "commands": [c.describe() for c in cls.commands],
            "event_types": list(cls.event_types),
            "quiet_events": list(cls.quiet_events),
            "narration": dict(cls.narration),
            "metrics": [m.describe() for m in cls.metric_specs],
            "theory": dict(cls.theory_models),
        }

    # Running ----------------------------------------------------------------

    def rebuild(self) -> None:
        """Recompute the ``derived`` attributes from ``self.p``."""

    def setup(self) -> None:
        """Build the initial world."""
        raise NotImplementedError

    def run_until(self, end: float) -> list[Event]:
        """Simulate every happening up to time ``end``; return the events."""
        raise NotImplementedError

    def metrics(self) -> dict[str, Any]:
        """Return the current figures, keyed by the names in ``metric_specs``."""
        raise NotImplementedError

    def reset_stats(self) -> None:
        """Start measuring afresh (the end of a warm-up); the world is untouched."""
        raise NotImplementedError

    def picture(self) -> dict[str, Any] | None:
        """Return the small per-component state the live picture draws (or None).

        Called once a frame, never per event: keep it to what the metrics do not
        already carry (which server holds what, each disk's stripes...).
        """
        return None

    def theory_key(self) -> tuple[Any, ...]:
        """Return what ``compute_theory`` depends on; equal keys share one result.

        By default the settings; an engine whose prediction depends on the state
        of the world too (how many servers are up) adds it.
        """
        return tuple(sorted(self.p.items()))

    def compute_theory(self) -> TheoryFigures:
        """Return, for the metrics in ``theory_models``, the value theory predicts
        under the current settings, or a sentence saying why there is none (load
        at or above 1: no steady state). A value may come as ``(value, "model")``
        where the model depends on the settings (round robin's E_n/M/1, power of
        two's supermarket model). Pure: it reads the world, never changes it.
        """
        return {}

    def theory(self) -> Theory:
        """Return (predicted values, reasons where there is none) for now.

        Each result is computed once per process for its ``theory_key`` and kept,
        so a frame costs a dictionary lookup; ``compute_theory`` runs again only
        when a setting (or whatever the key holds) changes.
        """
        key = (self.kind, self.theory_key())
        with _theory_lock:
            hit = _theory_cache.get(key)
            if hit is not None:
                _theory_cache.move_to_end(key)
                return hit
        result = self.compute_theory()
        values: dict[str, float] = {}
        gaps: dict[str, str] = {}
        models: dict[str, str] = {}
        for name, value in result.items():
            if isinstance(value, str):
                gaps[name] = value
                continue
            if isinstance(value, tuple):  # (value, the model these settings use)
                value, models[name] = value
            if math.isfinite(value):
                values[name] = _significant(value)
        with _theory_lock:
            _theory_cache[key] = (values, gaps)
            _theory_names[key] = models
            while len(_theory_cache) > THEORY_CACHE_SIZE:
                dropped, _ = _theory_cache.popitem(last=False)
                _theory_names.pop(dropped, None)
        return values, gaps

    def theory_names(self) -> dict[str, str]:
        """Return the model each prediction of ``theory()`` uses under the current
        settings, where ``compute_theory`` named one (``(value, "model")``)."""
        self.theory()
        with _theory_lock:
            return _theory_names.get((self.kind, self.theory_key()), {})

    def advance(self, dt: float) -> list[Event]:
        """Move the clock forward by ``dt`` simulated seconds; return what happened."""
        if not (dt >= 0 and math.isfinite(dt)):
            raise ValueError(f"dt must be a finite number of seconds >= 0; got {dt!r}")
        return self.advance_to(self.now + dt)

    def advance_to(self, end: float) -> list[Event]:
        """Move the clock forward to time ``end``; return what happened."""
        if end < self.now:
            raise ValueError(f"cannot go back in time from {self.now!r} to {end!r}")
        # Run in slices that end on tick boundaries, so that figures kept per
        # bucket of time (``Window``) are right however long the step is.
        events: list[Event] = []
        while True:
            boundary = (math.floor(self.now / TICK) + 1) * TICK
            if boundary >= end:
                events += self.run_until(end)
                self.now = end
                return merge_counts(events)
            events += self.run_until(boundary)
            self.now = boundary

    def apply(self, name: str, args: Mapping[str, Any] | None = None) -> list[Event]:
        """Carry out command ``name`` now; return its events."""
        command = self.command(name)
        values = command.coerce_args(args)
        return getattr(self, f"on_{name}")(**values) or []

    def set_param(self, name: str, value: Any) -> list[Event]:
        """Change one parameter of the running world."""
        param = self.param(name)
        values = dict(self.p)
        values[name] = param.coerce(value)
        if not param.live:
            raise ParamError(
                name, f"{name} cannot change in a running world; start a new run"
            )
        self.check_params(values)
        old = self.p
        self.p = values
        self.rebuild()
        return self.on_param_changed(name, old[name]) or []

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        """React to a parameter change (the default: nothing more to do)."""
        return None

    # State ------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self.derived}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.rebuild()

    def snapshot(self) -> bytes:
        """Return the exact state of the world as bytes."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def restore(blob: bytes) -> Engine:
        """Return the engine saved by ``snapshot`` (only ever feed it trusted bytes)."""
        engine = pickle.loads(blob)  # noqa: S301 - callers verify a signature first
        if not isinstance(engine, Engine):
            raise TypeError("not an engine snapshot")
        return engine
