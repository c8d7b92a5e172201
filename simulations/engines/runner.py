"""Run an engine headless: a timeline of commands and settings, a warm-up, a summary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import CommandError, Engine, EngineError, Event

SET = "set"  # the action of ``--at SECONDS:set:NAME=VALUE``: a change of setting


@dataclass(frozen=True, order=True)
class Step:
    """What to do at simulated time ``at`` (a scenario, ``--at``, a guided step).

    Either carry out ``command`` with ``args``, or, when ``param`` is given, change
    that parameter to ``value`` as a ``set`` control does.
    """

    at: float
    command: str = field(default="", compare=False)
    args: Mapping[str, Any] = field(default_factory=dict, compare=False)
    param: str = field(default="", compare=False)
    value: Any = field(default=None, compare=False)

    def apply(self, engine: Engine) -> list[Event]:
        """Carry the step out on ``engine`` now; return its events."""
        if self.param:
            return engine.set_param(self.param, self.value)
        return engine.apply(self.command, self.args)

    def describe(self) -> str:
        """Return what the step does in words: ``set ttl_s=5``, ``kill server=2``."""
        if self.param:
            return f"{SET} {self.param}={self.value}"
        return " ".join([self.command, *(f"{k}={v}" for k, v in self.args.items())])


def split_step(spec: str) -> tuple[float, str, dict[str, str]]:
    """Split ``SECONDS:ACTION[:NAME=VALUE,...]`` into its time, action and pairs.

    Only the syntax is checked here: ``simulations.timeline.at_step`` checks the
    action and its values as a live run's controls are checked.
    """
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[1].strip():
        raise CommandError(
            "at",
            f"--at takes SECONDS:COMMAND[:ARG=VALUE,...] or SECONDS:{SET}:NAME=VALUE; "
            f"got {spec!r}",
        )
    try:
        at = float(parts[0])
    except ValueError:
        raise CommandError(
            "at", f"--at time must be a number of seconds; got {parts[0]!r}"
        ) from None
    if not at >= 0:
        raise CommandError(
            "at", f"--at time must be 0 or more seconds; got {parts[0]!r}"
        )
    action = parts[1].strip()
    pairs: dict[str, str] = {}
    if len(parts) == 3 and parts[2]:
        for pair in parts[2].split(","):
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                if action == SET:
                    what = "a setting takes NAME=VALUE"
                else:
                    what = "command arguments take ARG=VALUE"
                raise CommandError("at", f"{what}; got {pair!r}")
            pairs[name.strip()] = value.strip()
    return at, action, pairs


def make_step(
    engine: type[Engine], at: float, command: str, args: Mapping[str, Any]
) -> Step:
    """Return a validated Step (arguments coerced to their declared types)."""
    values = engine.command(command).coerce_args(args)
    return Step(at=float(at), command=command, args=values)


@dataclass
class Summary:
    kind: str
    params: dict[str, Any]
    seed: int
    duration: float
    warmup: float
    metrics: dict[str, Any]
    theory: dict[str, float] = field(default_factory=dict)
    theory_gaps: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "params": self.params,
            "seed": self.seed,
            "duration": self.duration,
            "metrics": self.metrics,
            "theory": self.theory,
        }
        if self.theory_gaps:
            out["theory_gaps"] = self.theory_gaps
        return out


def run_headless(
    engine_cls: type[Engine],
    params: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    duration: float = 60.0,
    warmup: float | None = None,
    steps: Iterable[Step] = (),
    chunk: float = 1.0,
) -> Summary:
    """Run as fast as possible and return the metrics measured after the warm-up.

    Steps at the same time keep their given order; a step at the end of the
    warm-up is carried out before the statistics are reset.
    """
    if not duration > 0:
        raise EngineError(
            "duration", f"duration must be more than 0 seconds; got {duration!r}"
        )
    warmup = duration / 10 if warmup is None else warmup
    if not 0 <= warmup < duration:
        raise EngineError(
            "warmup",
            f"warmup must be from 0 to less than the duration ({duration:g}); got {warmup!r}",
        )
    engine = engine_cls(params, seed=seed)
    timeline = sorted(steps)
    marks = sorted({s.at for s in timeline if s.at <= duration} | {warmup, duration})
    todo = list(timeline)
    reset = warmup == 0
    if reset:
        engine.reset_stats()
    for mark in marks:
        _advance_to(engine, mark, chunk)
        while todo and todo[0].at <= mark:
            step = todo.pop(0)
            try:
                step.apply(engine)
            except EngineError as exc:
                raise EngineError(
                    exc.field, f"at {step.at:g} s, {step.describe()}: {exc.message}"
                ) from None
        if not reset and mark >= warmup:
            engine.reset_stats()
            reset = True
    theory, gaps = engine.theory()
    return Summary(
        kind=engine_cls.kind,
        params=dict(engine.p),
        seed=seed,
        duration=duration,
        warmup=warmup,
        metrics=summary_metrics(engine),
        theory=theory,
        theory_gaps=gaps,
    )


def _advance_to(engine: Engine, t: float, chunk: float) -> None:
    while engine.now + chunk < t:
        engine.advance_to(engine.now + chunk)
    if engine.now < t:
        engine.advance_to(t)


def summary_metrics(engine: Engine) -> dict[str, Any]:
    """Return the metrics ``simulate`` prints: the engine's summary ones."""
    figures = engine.metrics()
    return {m.name: figures[m.name] for m in engine.metric_specs if m.summary}
