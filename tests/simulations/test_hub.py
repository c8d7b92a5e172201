"""Replay and snapshot when a viewer joins or rejoins a run."""

from __future__ import annotations

import asyncio
import json

from simulations.hub import Hub
from simulations.transport import MemoryTransport


class Collector:
    def __init__(self, name="v"):
        self.viewer_id = name
        self.got = []

    def deliver(self, seq, sub, text):
        self.got.append(("frame" if sub == 0 else "status", seq, sub))

    def deliver_snapshot(self, seq, text):
        self.got.append(("snapshot", seq, json.loads(text)["seq"]))


def publish_frames(transport, run_id, first, last):
    for seq in range(first, last + 1):
        transport.publish(run_id, seq, 0, json.dumps({"type": "frame", "seq": seq}))


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
    # A worker thread publishes; the hub gets it on the event loop.
    await asyncio.to_thread(publish_frames, transport, "r", 11, 15)
    for _ in range(100):  # up to 5 s on a busy machine
        if len(viewer.got) >= 15:
            break
        await asyncio.sleep(0.05)
    assert [seq for kind, seq, _ in viewer.got] == list(range(1, 16))
    await hub.leave("r", viewer)
    await asyncio.to_thread(publish_frames, transport, "r", 16, 17)
    await asyncio.sleep(0.05)
    assert len(viewer.got) == 15


def test_a_message_is_never_published_twice():
    transport = MemoryTransport(replay=50)
    assert transport.publish("r", 5, 0, "a")
    assert not transport.publish("r", 5, 0, "a")
    assert not transport.publish("r", 4, 0, "b")
    assert transport.publish("r", 5, 1, "status")
    assert transport.last_id("r") == (5, 1)
