"""Embedded mode: streams, inboxes and leases in this process, behind one lock."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..memory import release_freed_memory
from .base import RETIRED_TTL, Entry, Exchange, Id, OnEntries, Published, Reply


class _Listener:
    def __init__(self, transport: MemoryTransport, loop, on_entries) -> None:
        self.transport = transport
        self.loop = loop
        self.on_entries = on_entries

    def close(self) -> None:
        with self.transport.lock:
            self.transport.listeners.discard(self)


class MemoryTransport:
    """Everything in this process; worker threads hand entries to event loops."""

    def __init__(self, replay: int) -> None:
        self.replay_size = replay
        self.lock = threading.Lock()
        self.streams: dict[str, deque[Entry]] = {}
        self.last: dict[str, Id] = {}
        self.controls: dict[str, deque[dict[str, Any]]] = {}
        self.leases: dict[str, tuple[str, float]] = {}
        self.dispatches: dict[str, float] = {}
        self.present: dict[str, set[str]] = {}
        self.retired: dict[str, float] = {}  # run id -> when its memory goes
        self.listeners: set[_Listener] = set()
        self._swept_at = 0.0
        self._trim_pending = False

    # worker side

    def exchange(self, batch: Exchange) -> Reply:
        now = time.monotonic()
        reply = Reply()
        out: list[Published] = []
        with self.lock:
            for run_id, prev, id_, text in batch.entries:
                if id_ <= self.last.get(run_id, (0, 0)):
                    continue
                self.last[run_id] = id_
                stream = self.streams.get(run_id)
                if stream is None:
                    stream = self.streams[run_id] = deque(maxlen=self.replay_size)
                stream.append((*id_, text))
                out.append((run_id, prev, id_, text))
            for run_id in batch.controls:
                inbox = self.controls.get(run_id)
                if inbox:
                    reply.controls[run_id] = list(inbox)
                    inbox.clear()
            for run_id in batch.renew:
                reply.renewed[run_id] = self._acquire(
                    run_id, batch.token, batch.lease_s, now
                )
            for run_id in batch.viewers:
                reply.viewers[run_id] = len(self.present.get(run_id, ()))
            for run_id in batch.release:
                self._release(run_id, batch.token)
            for run_id in batch.retire:
                self.retired[run_id] = now + RETIRED_TTL
            freed = False
            if now - self._swept_at >= 1.0:
                self._swept_at = now
                freed = self._sweep(now)
            listeners = list(self.listeners)
        # Given back at most every few seconds: a sweep that comes too soon after
        # the last is given back at a later exchange.
        self._trim_pending = self._trim_pending or freed
        if self._trim_pending and release_freed_memory():
            self._trim_pending = False
        reply.published = len(out)
        if out:
            for listener in listeners:
                with contextlib.suppress(RuntimeError):  # its loop closed: gone
                    listener.loop.call_soon_threadsafe(listener.on_entries, out)
        return reply

    def _sweep(self, now: float) -> bool:
        """Forget stopped runs whose retirement is due; return True if any went."""
        due = [r for r, at in self.retired.items() if at <= now]
        for run_id in due:
            del self.retired[run_id]
            for table in (self.streams, self.last, self.controls, self.present):
                table.pop(run_id, None)
            self.dispatches.pop(run_id, None)
        for run_id in [r for r, at in self.dispatches.items() if at <= now]:
            del self.dispatches[run_id]
        return bool(due)

    def last_id(self, run_id: str) -> Id:
        with self.lock:
            return self.last.get(run_id, (0, 0))

    def push_control(self, run_id: str, message: dict[str, Any]) -> None:
        with self.lock:
            self.controls.setdefault(run_id, deque()).append(message)

    def _acquire(self, run_id: str, token: str, ttl: float, now: float) -> bool:
        holder = self.leases.get(run_id)
        if holder and holder[1] > now and holder[0] != token:
            return False
        self.leases[run_id] = (token, now + ttl)
        return True

    def _release(self, run_id: str, token: str) -> None:
        if self.leases.get(run_id, ("",))[0] == token:
            del self.leases[run_id]

    def acquire(self, run_id: str, token: str, ttl: float) -> bool:
        with self.lock:
            return self._acquire(run_id, token, ttl, time.monotonic())

    def release(self, run_id: str, token: str) -> None:
        with self.lock:
            self._release(run_id, token)

    def leased(self, run_ids: list[str]) -> dict[str, bool]:
        now = time.monotonic()
        with self.lock:
            return {r: r in self.leases and self.leases[r][1] > now for r in run_ids}

    def watched(self, run_ids: list[str]) -> dict[str, bool]:
        with self.lock:
            return {r: bool(self.present.get(r)) for r in run_ids}

    def claim_dispatch(self, run_id: str, ttl: float) -> bool:
        now = time.monotonic()
        with self.lock:
            if self.dispatches.get(run_id, 0) > now:
                return False
            self.dispatches[run_id] = now + ttl
            return True

    def clear_dispatch(self, run_id: str) -> None:
        with self.lock:
            self.dispatches.pop(run_id, None)

    # web side

    async def apush_control(self, run_id: str, message: dict[str, Any]) -> None:
        self.push_control(run_id, message)

    async def aviewer(self, run_id: str, viewer: str, present: bool) -> None:
        with self.lock:
            if present:
                self.present.setdefault(run_id, set()).add(viewer)
            elif run_id in self.present:
                self.present[run_id].discard(viewer)

    async def arange(self, run_id: str, start: int) -> tuple[int | None, list[Entry]]:
        with self.lock:
            stream = self.streams.get(run_id)
            if not stream:
                return None, []
            return stream[0][0], [e for e in stream if e[0] >= start]

    async def alatest_frame(self, run_id: str) -> Entry | None:
        with self.lock:
            for entry in reversed(self.streams.get(run_id, ())):
                if entry[1] == 0:
                    return entry
        return None

    def subscribe(
        self,
        loop: asyncio.AbstractEventLoop,
        on_entries: OnEntries,
        on_resync: Callable[[], None],
    ) -> _Listener:
        # Nothing is ever lost in one process, so there is never a resync.
        listener = _Listener(self, loop, on_entries)
        with self.lock:
            self.listeners.add(listener)
        return listener
