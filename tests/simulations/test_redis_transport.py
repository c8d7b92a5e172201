"""The Redis transport: idempotent publishing, leases, controls (Redis db 14 of its own)."""

from __future__ import annotations

import json

import pytest
import redis

from simulations.transport import RedisTransport

URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def transport():
    client = redis.Redis.from_url(URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (`.ci/run` starts it)")
    client.flushdb()
    yield RedisTransport(URL, replay=20, prefix="t")
    client.flushdb()


def test_frames_go_out_once_and_in_order(transport):
    assert transport.publish("r", 1, 0, "one")
    assert transport.publish("r", 1, 1, "status")
    assert not transport.publish("r", 1, 0, "one again")
    assert not transport.publish("r", 0, 5, "older")
    assert transport.publish("r", 2, 0, "two")
    assert transport.last_id("r") == (2, 0)


def test_only_the_holder_renews_a_lease_and_a_lost_lease_can_be_taken_back(transport):
    assert transport.acquire("r", "a", 5)
    assert not transport.acquire("r", "b", 5)
    assert transport.renew("r", "a", 5)
    assert not transport.renew("r", "b", 5)
    assert transport.leased(["r", "s"]) == {"r": True, "s": False}
    transport.sync.delete(transport.key("r", "lease"))  # as after a Redis restart
    assert transport.renew("r", "a", 5)  # the driver takes it back
    transport.release("r", "b")  # not b's to release
    assert transport.leased(["r"]) == {"r": True}
    transport.release("r", "a")
    assert transport.leased(["r"]) == {"r": False}


def test_controls_come_out_in_the_order_they_went_in(transport):
    for i in range(3):
        transport.push_control("r", {"type": "speed", "value": i})
    assert [c["value"] for c in transport.pop_controls("r")] == [0, 1, 2]
    assert transport.pop_controls("r") == []


async def test_a_viewer_replays_from_the_stream(transport):
    for seq in range(1, 301):
        transport.publish("r", seq, 0, json.dumps({"seq": seq}))
    entries, snapshot = await transport.areplay("r", 295)
    assert not snapshot and [e[0] for e in entries] == [296, 297, 298, 299, 300]
    # The stream is trimmed near the buffer size (Redis trims whole nodes, so "near").
    entries, snapshot = await transport.areplay("r", 2)
    assert snapshot and [e[0] for e in entries] == [300]
    await transport.aviewer("r", "v1", True)
    assert transport.viewers("r") == 1
    await transport.aviewer("r", "v1", False)
    assert transport.viewers("r") == 0
