"""Errors the run service raises for its callers."""

from __future__ import annotations

from ..engines.base import EngineError


class QuotaError(EngineError):
    """A visitor already has as many live runs (or curve jobs) as allowed."""


class RunFailed(Exception):
    """The run cannot go on; the message says why, for its viewers."""
