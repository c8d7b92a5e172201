"""Controls at simulated times: what ``simulate --at`` and guided-step playback run.

A control here is checked by the same declarations as one sent over the websocket
(``validation.CONTROLS``), and carried out on the engine as the run driver carries
it out, so a headless timeline refuses exactly what a live run refuses.
"""

from __future__ import annotations

from typing import Any

from .engines.base import CommandError
from .engines.runner import SET, Step, split_step
from .runs.controls import control_parse


def control_step(kind: str, at: float, message: dict[str, Any]) -> Step:
    """Return the step that carries out a ``set`` or ``command`` control at ``at``.

    ``message`` is the control as the page sends it over the websocket. Raise
    EngineError, naming the field and what it accepts, for a control that the
    websocket would refuse.
    """
    control = control_parse(kind, message)
    if control["type"] == SET:
        return Step(at=float(at), param=control["name"], value=control["value"])
    return Step(at=float(at), command=control["name"], args=control["args"])


def at_step(kind: str, spec: str) -> Step:
    """Parse ``SECONDS:COMMAND[:ARG=VALUE,...]`` or ``SECONDS:set:NAME=VALUE``."""
    at, action, pairs = split_step(spec)
    if action != SET:
        message = {"type": "command", "name": action, "args": pairs}
        return control_step(kind, at, message)
    if len(pairs) != 1:
        raise CommandError(
            "at", f"--at SECONDS:{SET}:NAME=VALUE changes one setting; got {spec!r}"
        )
    [(name, value)] = pairs.items()
    return control_step(kind, at, {"type": SET, "name": name, "value": value})
