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

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings

try:
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import TimeoutError as _RedisTimeoutError

    TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
        _RedisConnectionError,
        _RedisTimeoutError,
        ConnectionError,
        TimeoutError,
    )
except ImportError:  # pragma: no cover - redis is a requirement
    TRANSIENT_ERRORS = (ConnectionError, TimeoutError)

Id = tuple[int, int]
Entry = tuple[int, int, str]  # (seq, sub, message text): what a replay returns
Published = tuple[str, Id, Id, str]  # (run id, previous id, id, text): the live feed
OnEntries = Callable[[list[Published]], None]

VIEWER_TTL = 30.0  # seconds a viewer counts as present after its last heartbeat
STREAM_TTL = 3600  # seconds a live run's keys outlive their last write
RETIRED_TTL = 60  # seconds a stopped run's frames stay, for a late reconnect


@dataclass
class Exchange:
    """Everything one scheduler tick sends and asks, done in one round trip."""

    token: str
    lease_s: float
    entries: list[Published] = field(default_factory=list)
    controls: list[str] = field(default_factory=list)  # inboxes to read
    renew: list[str] = field(default_factory=list)  # leases to renew
    viewers: list[str] = field(default_factory=list)  # viewer counts to read
    release: list[str] = field(default_factory=list)  # leases to give up
    retire: list[str] = field(default_factory=list)  # stopped runs to forget soon

    def __bool__(self) -> bool:
        return any(
            (
                self.entries,
                self.controls,
                self.renew,
                self.viewers,
                self.release,
                self.retire,
            )
        )


@dataclass
class Reply:
    published: int = 0
    controls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    renewed: dict[str, bool] = field(default_factory=dict)
    viewers: dict[str, int] = field(default_factory=dict)


class Subscription(Protocol):
    def close(self) -> None: ...


class Transport(Protocol):
    """What the run service and the hub need of a transport."""

    replay_size: int

    # Worker side (synchronous; the scheduler's and the store's threads).
    def exchange(self, batch: Exchange) -> Reply: ...
    def last_id(self, run_id: str) -> Id: ...
    def acquire(self, run_id: str, token: str, ttl: float) -> bool: ...
    def release(self, run_id: str, token: str) -> None: ...
    def leased(self, run_ids: list[str]) -> dict[str, bool]: ...
    def claim_dispatch(self, run_id: str, ttl: float) -> bool: ...
    def clear_dispatch(self, run_id: str) -> None: ...
    def push_control(self, run_id: str, message: dict[str, Any]) -> None: ...

    # Web side (asynchronous; the event loop of a web process).
    async def apush_control(self, run_id: str, message: dict[str, Any]) -> None: ...
    async def aviewer(self, run_id: str, viewer: str, present: bool) -> None: ...
    async def arange(self, run_id: str, start: int) -> tuple[int | None, list[Entry]]:
        """Return the first seq the buffer holds, and its entries from seq ``start``."""
        ...

    async def alatest_frame(self, run_id: str) -> Entry | None: ...
    def subscribe(
        self,
        loop: asyncio.AbstractEventLoop,
        on_entries: OnEntries,
        on_resync: Callable[[], None],
    ) -> Subscription:
        """Call ``on_entries`` in ``loop`` with every tick's entries, all runs.

        ``on_resync`` is called after the feed was interrupted (a Redis restart):
        entries may have been missed, and the reader fills its gaps.
        """
        ...


def parse_id(raw: str | bytes) -> Id:
    text = raw.decode() if isinstance(raw, bytes) else raw
    seq, _, sub = text.partition("-")
    return int(seq), int(sub or 0)


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


from .memory import MemoryTransport  # noqa: E402 - they build on what is above
from .redis import RedisTransport  # noqa: E402

__all__ = [
    "TRANSIENT_ERRORS",
    "Entry",
    "Exchange",
    "Id",
    "MemoryTransport",
    "Published",
    "RedisTransport",
    "Reply",
    "Transport",
    "get_transport",
    "parse_id",
    "set_transport",
]
