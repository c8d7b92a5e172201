"""Control messages: checked against the run's engine, then queued for its worker."""

from __future__ import annotations

from typing import Any

from ..validation import CONTROLS, validate


def control_parse(kind: str, message: Any) -> dict[str, Any]:
    """Validate a control message against the run's engine; return it normalised.

    The declarations are ``validation.MESSAGES``; ``seen`` and ``ping`` are not
    controls, and are refused here.
    """
    return validate(CONTROLS, message, kind=kind)
