"""Run an engine headless: a timeline of commands, a warm-up, a summary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import CommandError, Engine, EngineError


@dataclass(frozen=True, order=True)
class Step:
    """A command to carry out at simulated time ``at`` (a scenario or ``--at``)."""

    at: float
    command: str = field(compare=False)
    args: Mapping[str, Any] = field(default_factory=dict, compare=False)


def parse_step(spec: str, engine: type[Engine]) -> Step:
    """Parse ``SECONDS:COMMAND[:ARG=VALUE,...]`` and check it against ``engine``."""
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[1]:
        raise CommandError(
            "at", f"--at takes SECONDS:COMMAND[:ARG=VALUE,...]; got {spec!r}"
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
    args: dict[str, str] = {}
    if len(parts) == 3 and parts[2]:
        for pair in parts[2].split(","):
            name, sep, value = pair.partition("=")
            if not sep or not name:
                raise CommandError(
                    "at", f"command arguments take ARG=VALUE; got {pair!r}"
                )
            args[name.strip()] = value.strip()
    return make_step(engine, at, parts[1].strip(), args)


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

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": self.params,
            "seed": self.seed,
            "duration": self.duration,
            "metrics": self.metrics,
        }


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

    Commands at the same time keep their given order; a command at the end of the
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
            engine.apply(step.command, step.args)
        if not reset and mark >= warmup:
            engine.reset_stats()
            reset = True
    return Summary(
        kind=engine_cls.kind,
        params=dict(engine.p),
        seed=seed,
        duration=duration,
        warmup=warmup,
        metrics=summary_metrics(engine),
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
