"""How runs move frames, controls and leases between processes.

Two transports satisfy one protocol, ``Transport``: ``MemoryTransport`` for embedded
mode (one process; the scheduler thread hands each tick's entries to the event loops
with ``call_soon_threadsafe``) and ``RedisTransport`` for distributed mode (a Redis
stream per run is the replay buffer, a list per run the control inbox, a key with a
TTL the worker's lease, and one pub/sub channel the live feed of every tick).

Frames and status messages carry an id ``(seq, sub)``: a frame is ``(seq, 0)``,
status messages after it ``(seq, 1)``, ``(seq, 2)``... A message is published only
if its id is greater than the run's last one, so a worker that resumes a run from a
checkpoint and regenerates frames already sent cannot send them twice. Each live
entry also names the id published before it, so a reader sees at once when it missed
one and fills the gap from the replay buffer.
"""

from __future__ import annotations

import threading

from django.conf import settings

from .base import (
    RETIRED_TTL,
    TRANSIENT_ERRORS,
    Entry,
    Exchange,
    Id,
    Published,
    Reply,
    Subscription,
    Transport,
    parse_id,
)
from .memory import MemoryTransport
from .redis import RedisTransport

_transport: Transport | None = None
_transport_lock = threading.Lock()


def get_transport() -> Transport:
    """Return this process's transport, chosen by settings (REDIS_URL or not)."""
    global _transport
    with _transport_lock:
        if _transport is None:
            replay = settings.SCALELAB["REPLAY_FRAMES"]
            if settings.REDIS_URL:
                _transport = RedisTransport(settings.REDIS_URL, replay)
            else:
                _transport = MemoryTransport(replay)
        return _transport


def set_transport(transport: Transport | None) -> None:
    """Replace the process's transport (tests and the embedded server)."""
    global _transport
    with _transport_lock:
        _transport = transport


__all__ = [
    "RETIRED_TTL",
    "TRANSIENT_ERRORS",
    "Entry",
    "Exchange",
    "Id",
    "MemoryTransport",
    "Published",
    "RedisTransport",
    "Reply",
    "Subscription",
    "Transport",
    "get_transport",
    "parse_id",
    "set_transport",
]
