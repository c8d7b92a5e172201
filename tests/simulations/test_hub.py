"""Replay, snapshot and gap filling when a viewer joins, rejoins or misses an entry."""

from __future__ import annotations

import asyncio
import json

from simulations.hub import Hub
from simulations.transport import Exchange, MemoryTransport


class Collector:
    def __init__(self, name="v"):
        self.viewer_id = name
        self.got = []

    def deliver(self, seq, sub, text):
        self.got.append(("frame" if sub == 0 else "status", seq, sub))

    def deliver_snapshot(self, seq, text):
        self.got.append(("snapshot", seq, json.loads(text)["seq"]))


def publish_frames(transport, run_id, first, last, prev=None):
    """Publish frames ``first``..``last`` as one scheduler tick does."""
    batch = Exchange("worker", 3.0)
    prev = prev if prev is not None else (first - 1, 0)
    for seq in range(first, last + 1):
        text = json.dumps({"type": "frame", "seq": seq})
        batch.entries.append((run_id, prev, (seq, 0), text))
        prev = (seq, 0)
    return transport.exchange(batch)


async def settle(viewer, count):
    for _ in range(100):  # up to 5 s on a busy machine
        if len(viewer.got) >= count:
            return
        await asyncio.sleep(0.05)


async def test_a_viewer_resuming_inside_the_buffer_gets_exactly_what_it_missed():
    transport = MemoryTransport(replay=50)
    publish_frames(transport, "r", 1, 30)
    viewer = Collector()
    await Hub(transport, asyncio.get_running_loop()).join("r", viewer, after=22)
    assert viewer.got == [("frame", seq, 0) for seq in range(23, 31)]


async def test_a_viewer_resuming_past_the_buffer_gets_a_snapshot_of_the_latest_frame():
    transport = MemoryTransport(replay=5)
    publish_frames(transport, "r", 1, 30)
    viewer = Collector()
    await Hub(transport, asyncio.get_running_loop()).join("r", viewer, after=3)
    assert viewer.got == [("snapshot", 30, 30)]


async def test_live_frames_follow_the_replay_without_a_gap_or_a_repeat():
    transport = MemoryTransport(replay=50)
    publish_frames(transport, "r", 1, 10)
    viewer = Collector()
    hub = Hub(transport, asyncio.get_running_loop())
    await hub.join("r", viewer, after=0)
    # The scheduler's thread publishes; the hub gets it on the event loop.
    await asyncio.to_thread(publish_frames, transport, "r", 11, 15)
    await settle(viewer, 15)
    assert [seq for kind, seq, _ in viewer.got] == list(range(1, 16))
    await hub.leave("r", viewer)
    await asyncio.to_thread(publish_frames, transport, "r", 16, 17)
    await asyncio.sleep(0.05)
    assert len(viewer.got) == 15


async def test_an_entry_missed_on_the_live_feed_is_filled_from_the_buffer():
    transport = MemoryTransport(replay=50)
    publish_frames(transport, "r", 1, 5)
    viewer = Collector()
    hub = Hub(transport, asyncio.get_running_loop())
    await hub.join("r", viewer, after=0)
    # Frames 6 and 7 reach the buffer but not this process's feed (as when the
    # feed's connection drops for a moment); frame 8 names 7 as its predecessor.
    hub.feed.close()
    publish_frames(transport, "r", 6, 7)
    hub.feed = transport.subscribe(hub.loop, hub.on_entries, hub.on_resync)
    await asyncio.to_thread(publish_frames, transport, "r", 8, 9)
    await settle(viewer, 9)
    assert [seq for kind, seq, _ in viewer.got] == list(range(1, 10))


async def test_a_gap_older_than_the_buffer_resyncs_the_viewer_with_a_snapshot():
    transport = MemoryTransport(replay=5)
    publish_frames(transport, "r", 1, 3)
    viewer = Collector()
    hub = Hub(transport, asyncio.get_running_loop())
    await hub.join("r", viewer, after=0)
    hub.feed.close()
    publish_frames(transport, "r", 4, 20)  # more than the buffer holds
    hub.feed = transport.subscribe(hub.loop, hub.on_entries, hub.on_resync)
    await asyncio.to_thread(publish_frames, transport, "r", 21, 22)
    await settle(viewer, 4)
    await asyncio.sleep(0.05)
    # The latest frame, and nothing older after it.
    assert viewer.got == [
        ("frame", 1, 0),
        ("frame", 2, 0),
        ("frame", 3, 0),
        ("snapshot", 22, 22),
    ]


def test_a_message_is_never_published_twice():
    transport = MemoryTransport(replay=50)
    assert publish_frames(transport, "r", 5, 5).published == 1
    assert publish_frames(transport, "r", 5, 5).published == 0
    assert publish_frames(transport, "r", 4, 4).published == 0
    batch = Exchange("worker", 3.0, entries=[("r", (5, 0), (5, 1), "status")])
    assert transport.exchange(batch).published == 1
    assert transport.last_id("r") == (5, 1)
