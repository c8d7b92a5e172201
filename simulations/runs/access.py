"""Who may control a run: its owner. Anyone with its link may watch."""

from __future__ import annotations

import secrets

from ..models import Run


def can_control(run: Run, user, visitor: str) -> bool:
    """Return whether ``user`` (or the anonymous ``visitor``) owns ``run``."""
    if run.owner_id is not None:
        return user is not None and user.is_authenticated and user.pk == run.owner_id
    return bool(visitor) and secrets.compare_digest(run.visitor, visitor)
