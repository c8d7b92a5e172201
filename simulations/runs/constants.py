"""Constants shared by the run service, its tasks and the curve jobs."""

from __future__ import annotations

from django.conf import settings

from ..models import Run

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MAX_SEED = 2**31 - 1
EVENTS_PER_FRAME = 40
CONTROL_ACTIONS = (
    "pause",
    "resume",
    "step",
    "speed",
    "set",
    "command",
    "reset",
    "stop",
)
LIVE = (Run.Status.RUNNING, Run.Status.PAUSED)


def limits() -> dict[str, int]:
    """Return the run limits from settings (read at call time, never at import)."""
    return settings.SCALELAB
