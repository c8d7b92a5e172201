"""Fan frames out to the viewers in this process, one feed for all runs.

Each event loop (a Daphne process has one) gets a hub. The hub subscribes to its
transport's live feed while it has viewers, and hands each entry to the viewers of
its run. A viewer that joins gets what it missed from the run's replay buffer first;
a gap in the live feed (an entry whose predecessor never arrived, or the feed itself
interrupted by a Redis restart) is filled from the same buffer. Both follow one rule,
``_catch_up``: when the buffer no longer reaches back far enough, the viewer gets a
snapshot of the latest frame instead of a replay with a hole in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Protocol

from .memory import release_freed_memory
from .transport import (
    TRANSIENT_ERRORS,
    Entry,
    Id,
    Published,
    Subscription,
    Transport,
    get_transport,
)

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0


class Viewer(Protocol):
    viewer_id: str

    def deliver(self, seq: int, sub: int, text: str) -> None: ...
    def deliver_snapshot(self, seq: int, text: str) -> None: ...


async def _catch_up(
    transport: Transport, run_id: str, after: Id
) -> tuple[list[Entry], Entry | None, Id | None]:
    """Return the entries after ``after``, or else the latest frame as a snapshot.

    The snapshot is for when the buffer starts past the next frame needed: the
    entries in between are gone, and a replay would have a hole in it. The third
    value is the id of the buffer's last entry (None when it is empty).
    """
    first, entries = await transport.arange(run_id, after[0])
    tail = (entries[-1][0], entries[-1][1]) if entries else None
    if first is not None and first > after[0] + 1:
        snapshot = await transport.alatest_frame(run_id)
        return [], snapshot, snapshot and (snapshot[0], snapshot[1])
    return [e for e in entries if (e[0], e[1]) > after], None, tail


class Hub:
    def __init__(self, transport: Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.viewers: dict[str, dict[str, Viewer]] = {}
        self.cursors: dict[str, Id] = {}  # the last entry handed to a run's viewers
        self.filling: dict[str, list[Published]] = {}  # held while a gap is filled
        self.joining: dict[str, list[Entry]] = {}  # held while a replay is read
        self.feed: Subscription | None = None
        self.heartbeat: asyncio.Task | None = None

    async def join(self, run_id: str, viewer: Viewer, after: int) -> None:
        """Start sending ``run_id`` to ``viewer``: first what it missed, then live."""
        if self.feed is None:
            self.feed = self.transport.subscribe(
                self.loop, self.on_entries, self.on_resync
            )
        # Live entries that arrive while the replay is read wait for it, so the
        # viewer gets the replay first and then everything after it, in order.
        waiting: list[Entry] = []
        self.joining[viewer.viewer_id] = waiting
        self.viewers.setdefault(run_id, {})[viewer.viewer_id] = viewer
        try:
            entries, snapshot, tail = await _catch_up(
                self.transport, run_id, (after, 1 << 62)
            )
        finally:
            del self.joining[viewer.viewer_id]
        if snapshot is not None:
            viewer.deliver_snapshot(snapshot[0], snapshot[2])
        for seq, sub, text in entries:
            viewer.deliver(seq, sub, text)
        for seq, sub, text in waiting:
            viewer.deliver(seq, sub, text)
        if run_id not in self.cursors and tail is not None:
            self.cursors[run_id] = max([tail] + [(e[0], e[1]) for e in waiting])
        await self.transport.aviewer(run_id, viewer.viewer_id, True)
        if self.heartbeat is None or self.heartbeat.done():
            self.heartbeat = self.loop.create_task(self._beat())

    async def leave(self, run_id: str, viewer: Viewer) -> None:
        viewers = self.viewers.get(run_id, {})
        viewers.pop(viewer.viewer_id, None)
        if not viewers:
            self.viewers.pop(run_id, None)
            self.cursors.pop(run_id, None)
            self.filling.pop(run_id, None)
            if not self.viewers and self.feed is not None:
                self.feed.close()  # no viewer here: stop reading every run's frames
                self.feed = None
            release_freed_memory()  # what its viewers held (at most every few s)
        with contextlib.suppress(*TRANSIENT_ERRORS):  # a stale presence expires
            await self.transport.aviewer(run_id, viewer.viewer_id, False)

    def on_entries(self, entries: list[Published]) -> None:
        """Hand one tick's entries to their viewers, noticing any gap."""
        for run_id, prev, id_, text in entries:
            if run_id not in self.viewers:
                continue
            held = self.filling.get(run_id)
            if held is not None:
                held.append((run_id, prev, id_, text))
                continue
            cursor = self.cursors.get(run_id)
            if cursor is None or prev <= cursor:
                if cursor is None or id_ > cursor:
                    self.cursors[run_id] = id_
                    self._dispatch(run_id, id_, text)
            else:
                self.filling[run_id] = [(run_id, prev, id_, text)]
                self.loop.create_task(self._fill(run_id))

    def on_resync(self) -> None:
        """The feed was interrupted: fill every watched run from its buffer."""
        for run_id in list(self.viewers):
            if run_id not in self.filling and run_id in self.cursors:
                self.filling[run_id] = []
                self.loop.create_task(self._fill(run_id))

    async def _fill(self, run_id: str) -> None:
        cursor = self.cursors.get(run_id, (0, 0))
        try:
            entries, snapshot, _ = await _catch_up(self.transport, run_id, cursor)
        except TRANSIENT_ERRORS:
            entries, snapshot = [], None
        if run_id not in self.viewers:
            return
        if snapshot is not None:
            cursor = (snapshot[0], 0)
            for viewer in list(self.viewers[run_id].values()):
                viewer.deliver_snapshot(snapshot[0], snapshot[2])
        for seq, sub, text in entries:
            cursor = (seq, sub)
            self._dispatch(run_id, cursor, text)
        for _, _, id_, text in self.filling.pop(run_id, []):
            if id_ > cursor:
                cursor = id_
                self._dispatch(run_id, id_, text)
        self.cursors[run_id] = cursor

    def _dispatch(self, run_id: str, id_: Id, text: str) -> None:
        seq, sub = id_
        for viewer in list(self.viewers.get(run_id, {}).values()):
            waiting = self.joining.get(viewer.viewer_id)
            if waiting is not None:
                waiting.append((seq, sub, text))
            else:
                viewer.deliver(seq, sub, text)

    async def _beat(self) -> None:
        """Keep this process's viewers counted as present."""
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
