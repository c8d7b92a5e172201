"""Golden seeded traces: the frames an engine gives for a fixed seed and timeline.

A trace is stored as JSON under ``golden/<name>.json``. Set UPDATE_GOLDEN=1 to
write it afresh after an intended change of behaviour (and say so in the commit).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from simulations.engines.base import Engine
from simulations.engines.runner import Step

GOLDEN_DIR = Path(__file__).parent / "golden"


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.10g}") if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value


def trace(
    engine_cls: type[Engine],
    params: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    steps: Iterable[Step] = (),
    frames: int = 20,
    dt: float = 0.5,
) -> list[dict[str, Any]]:
    """Return ``frames`` frames of ``dt`` seconds, carrying out ``steps`` on time.

    A step is carried out at the first frame boundary at or after its time, as a
    live run does.
    """
    engine = engine_cls(params, seed=seed)
    todo = sorted(steps)
    out = []
    for _ in range(frames):
        events: list[dict[str, Any]] = []
        while todo and todo[0].at <= engine.now + 1e-12:
            step = todo.pop(0)
            events += engine.apply(step.command, step.args)
        events += engine.advance(dt)
        out.append({"t": engine.now, "metrics": engine.metrics(), "events": events})
    return _round(out)


def assert_golden(name: str, frames: list[dict[str, Any]]) -> None:
    """Compare ``frames`` with the stored trace ``name`` (write it when asked to)."""
    path = GOLDEN_DIR / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
        if os.environ.get("CI") and not path.exists():
            raise AssertionError(f"golden trace {path} is missing")
        path.write_text(json.dumps(frames, indent=1, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    assert len(frames) == len(expected)
    for i, (got, want) in enumerate(zip(frames, expected)):
        assert got == want, f"frame {i} differs from the golden trace {path.name}"
