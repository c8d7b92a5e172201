"""Fan frames out to the viewers in this process, one feed per run.

Each event loop (a Daphne process has one) gets a hub. In embedded mode the
memory transport calls the hub from worker threads through
``call_soon_threadsafe``; in distributed mode one task per hub reads every
watched run's Redis stream with a single blocking XREAD. Either way a frame
crosses from the worker once per process, not once per viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Protocol

from .transport import (
    TRANSIENT_ERRORS,
    MemoryTransport,
    RedisTransport,
    Transport,
    _parse_id,
    get_transport,
)

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0


class Viewer(Protocol):
    viewer_id: str

    def deliver(self, seq: int, sub: int, text: str) -> None: ...
    def deliver_snapshot(self, seq: int, text: str) -> None: ...


class Hub:
    def __init__(self, transport: Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.viewers: dict[str, dict[str, Viewer]] = {}
        self.cursors: dict[str, tuple[int, int]] = {}
        self.joining: dict[str, list[tuple[int, int, str]]] = {}
        self.reader: asyncio.Task | None = None
        self.heartbeat: asyncio.Task | None = None

    async def join(self, run_id: str, viewer: Viewer, after: int) -> None:
        """Start sending ``run_id`` to ``viewer``: first what it missed, then live."""
        first = run_id not in self.viewers
        # Live messages that arrive while the replay is read wait for it, so the
        # viewer gets the replay first and then everything after it, in order.
        waiting: list[tuple[int, int, str]] = []
        self.joining[viewer.viewer_id] = waiting
        self.viewers.setdefault(run_id, {})[viewer.viewer_id] = viewer
        if first and isinstance(self.transport, MemoryTransport):
            self.transport.listen(run_id, self.loop, self.dispatch)
        try:
            entries, snapshot = await self.transport.areplay(run_id, after)
        finally:
            del self.joining[viewer.viewer_id]
        if snapshot and entries:
            viewer.deliver_snapshot(entries[-1][0], entries[-1][2])
        else:
            for seq, sub, text in entries:
                viewer.deliver(seq, sub, text)
        for seq, sub, text in waiting:
            viewer.deliver(seq, sub, text)
        if isinstance(self.transport, RedisTransport):
            if run_id not in self.cursors:
                self.cursors[run_id] = (
                    (entries[-1][0], entries[-1][1]) if entries else (after, 0)
                )
            if self.reader is None or self.reader.done():
                self.reader = self.loop.create_task(self._read_redis())
        await self.transport.aviewer(run_id, viewer.viewer_id, True)
        if self.heartbeat is None or self.heartbeat.done():
            self.heartbeat = self.loop.create_task(self._beat())

    async def leave(self, run_id: str, viewer: Viewer) -> None:
        viewers = self.viewers.get(run_id, {})
        viewers.pop(viewer.viewer_id, None)
        if not viewers:
            self.viewers.pop(run_id, None)
            self.cursors.pop(run_id, None)
            if isinstance(self.transport, MemoryTransport):
                self.transport.unlisten(run_id, self.loop, self.dispatch)
        with contextlib.suppress(
            *TRANSIENT_ERRORS
        ):  # a stale presence expires by itself
            await self.transport.aviewer(run_id, viewer.viewer_id, False)

    def dispatch(self, run_id: str, seq: int, sub: int, text: str) -> None:
        for viewer in list(self.viewers.get(run_id, {}).values()):
            waiting = self.joining.get(viewer.viewer_id)
            if waiting is not None:
                waiting.append((seq, sub, text))
            else:
                viewer.deliver(seq, sub, text)

    async def _read_redis(self) -> None:
        transport = self.transport
        assert isinstance(transport, RedisTransport)
        client = transport.aclient()
        backoff = 0.2
        while self.cursors:
            streams = {
                transport.key(r, "frames"): f"{c[0]}-{c[1]}"
                for r, c in self.cursors.items()
            }
            try:
                reply = await client.xread(streams, block=100, count=200)
            except TRANSIENT_ERRORS as exc:
                log.warning("frame feed unavailable (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.2
            for key, entries in reply or ():
                run_id = (key.decode() if isinstance(key, bytes) else key).split(":")[2]
                for raw_id, fields in entries:
                    seq, sub = _parse_id(raw_id)
                    if run_id in self.cursors:
                        self.cursors[run_id] = (seq, sub)
                    self.dispatch(run_id, seq, sub, fields[b"m"].decode())

    async def _beat(self) -> None:
        """Keep this process's viewers counted as present (distributed mode)."""
        while self.viewers:
            await asyncio.sleep(HEARTBEAT_S)
            for run_id, viewers in list(self.viewers.items()):
                for viewer_id in list(viewers):
                    try:
                        await self.transport.aviewer(run_id, viewer_id, True)
                    except TRANSIENT_ERRORS:
                        break


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = (
    weakref.WeakKeyDictionary()
)


def get_hub() -> Hub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.transport is not get_transport():
        hub = _hubs[loop] = Hub(get_transport(), loop)
    return hub
