"""The transport protocol and the records a scheduler tick exchanges through it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    def watched(self, run_ids: list[str]) -> dict[str, bool]: ...
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
