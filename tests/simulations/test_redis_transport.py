"""The Redis transport: one exchange a tick, leases, controls, the feed (db 14 of its own)."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis

from simulations.transport import Exchange, RedisTransport

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


def entries(run_id, *ids):
    out, prev = [], (0, 0)
    for id_ in ids:
        out.append((run_id, prev, id_, json.dumps({"seq": id_[0], "sub": id_[1]})))
        prev = id_
    return out


def test_frames_go_out_once_and_in_order(transport):
    tick = Exchange("w", 3.0, entries=entries("r", (1, 0), (1, 1)))
    assert transport.exchange(tick).published == 2
    assert transport.exchange(tick).published == 0  # the same tick again: nothing
    late = Exchange("w", 3.0, entries=[("r", (1, 1), (0, 5), "older")])
    assert transport.exchange(late).published == 0
    assert (
        transport.exchange(Exchange("w", 3.0, entries=entries("r", (2, 0)))).published
        == 1
    )
    assert transport.last_id("r") == (2, 0)


def test_only_the_holder_renews_a_lease_and_a_lost_lease_can_be_taken_back(transport):
    assert transport.acquire("r", "a", 5)
    assert not transport.acquire("r", "b", 5)
    assert transport.exchange(Exchange("a", 5, renew=["r"])).renewed == {"r": True}
    assert transport.exchange(Exchange("b", 5, renew=["r"])).renewed == {"r": False}
    assert transport.leased(["r", "s"]) == {"r": True, "s": False}
    transport.sync.delete(transport.key("r", "lease"))  # as after a Redis restart
    assert transport.exchange(Exchange("a", 5, renew=["r"])).renewed == {"r": True}
    transport.exchange(Exchange("b", 5, release=["r"]))  # not b's to release
    assert transport.leased(["r"]) == {"r": True}
    transport.exchange(Exchange("a", 5, release=["r"]))
    assert transport.leased(["r"]) == {"r": False}


def test_a_queued_claim_is_held_until_cleared(transport):
    assert transport.claim_dispatch("r", 60)
    assert not transport.claim_dispatch("r", 60)
    transport.clear_dispatch("r")
    assert transport.claim_dispatch("r", 60)


def test_controls_come_out_in_the_order_they_went_in_for_the_runs_asked(transport):
    for i in range(3):
        transport.push_control("r", {"type": "speed", "value": i})
    transport.push_control("s", {"type": "pause"})
    reply = transport.exchange(Exchange("w", 3.0, controls=["r", "q"]))
    assert [c["value"] for c in reply.controls["r"]] == [0, 1, 2]
    assert "q" not in reply.controls
    assert transport.exchange(Exchange("w", 3.0, controls=["r"])).controls == {}
    assert transport.exchange(Exchange("w", 3.0, controls=["s"])).controls == {
        "s": [{"type": "pause"}]
    }


def test_a_stopped_run_is_forgotten_after_a_short_while(transport):
    transport.exchange(Exchange("w", 3.0, entries=entries("r", (1, 0))))
    assert transport.sync.ttl(transport.key("r", "frames")) > 600
    transport.exchange(Exchange("w", 3.0, retire=["r"]))
    assert 0 < transport.sync.ttl(transport.key("r", "frames")) <= 60


async def test_a_viewer_replays_from_the_stream_and_is_counted(transport):
    ids = [(seq, 0) for seq in range(1, 301)]
    transport.exchange(Exchange("w", 3.0, entries=entries("r", *ids)))
    first, got = await transport.arange("r", 296)
    assert first > 1 and [e[0] for e in got] == [296, 297, 298, 299, 300]
    # The stream is trimmed near the buffer size (Redis trims whole nodes, so "near").
    assert (await transport.alatest_frame("r"))[0] == 300
    await transport.aviewer("r", "v1", True)
    assert transport.exchange(Exchange("w", 3.0, viewers=["r"])).viewers == {"r": 1}
    await transport.aviewer("r", "v1", False)
    assert transport.exchange(Exchange("w", 3.0, viewers=["r"])).viewers == {"r": 0}


async def test_the_feed_carries_each_tick_with_each_entrys_predecessor(transport):
    got = []
    loop = asyncio.get_running_loop()
    feed = transport.subscribe(loop, got.extend, lambda: None)
    try:
        for _ in range(50):  # the subscription is made by the feed's task
            await asyncio.sleep(0.02)
            if transport.sync.pubsub_numsub("t:feed")[0][1]:
                break
        tick = entries("r", (1, 0), (1, 1)) + entries("s", (1, 0))
        await asyncio.to_thread(transport.exchange, Exchange("w", 3.0, entries=tick))
        for _ in range(100):
            if len(got) == 3:
                break
            await asyncio.sleep(0.02)
    finally:
        feed.close()
    assert [(r, prev, id_) for r, prev, id_, _ in got] == [
        ("r", (0, 0), (1, 0)),
        ("r", (1, 0), (1, 1)),
        ("s", (0, 0), (1, 0)),
    ]
    assert json.loads(got[1][3]) == {"seq": 1, "sub": 1}
