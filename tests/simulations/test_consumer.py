"""The run websocket, through the real ASGI stack and an embedded worker."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from scalelab.asgi import application
from simulations.models import Run
from simulations.runs.lifecycle import run_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def connect(run_id, session_key=None, after=0):
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if session_key:
        headers.append((b"cookie", f"sessionid={session_key}".encode()))
    comm = WebsocketCommunicator(
        application, f"/ws/runs/{run_id}/?after={after}", headers=headers
    )
    connected, _ = await comm.connect()
    assert connected
    hello = await comm.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    return comm, hello


async def next_of(comm, kind, timeout=5.0, **match):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"no {kind} message {match} within {timeout} s")
        message = await comm.receive_json_from(timeout=left)
        # A value to match, or a test of the field's value.
        if message["type"] == kind and all(
            v(message.get(k)) if callable(v) else message.get(k) == v
            for k, v in match.items()
        ):
            return message


async def frames(comm, count, ack=True):
    got = []
    while len(got) < count:
        message = await comm.receive_json_from(timeout=5)
        if message["type"] == "frame":
            got.append(message)
            if ack:
                await comm.send_json_to({"type": "seen", "seq": message["seq"]})
    return got


@database_sync_to_async
def create_run(visitor, **params):
    return run_create(kind="cache", params=params, seed=3, visitor=visitor)


@database_sync_to_async
def reload(run):
    run.refresh_from_db()
    return run


async def stop(comm):
    await comm.send_json_to({"type": "stop"})
    await next_of(comm, "status", status="stopped")
    await comm.disconnect()


async def test_the_owner_watches_frames_and_pauses_and_resumes(
    live_runs, visitor_session
):
    key, visitor = visitor_session
    run = await create_run(visitor)
    comm, hello = await connect(run.id, key)
    assert hello["can_control"] is True
    assert hello["engine"]["kind"] == "cache"
    got = await frames(comm, 5)
    assert [f["seq"] for f in got] == sorted({f["seq"] for f in got})
    await comm.send_json_to({"type": "pause", "ref": 1})
    assert (await next_of(comm, "accepted"))["ref"] == 1
    paused = await next_of(comm, "status", status="paused")
    assert (await reload(run)).status == Run.Status.PAUSED
    await comm.send_json_to({"type": "resume", "ref": 2})
    await next_of(comm, "status", status="running")
    frame = await next_of(comm, "frame")
    assert frame["seq"] > paused["seq"]
    await stop(comm)


async def test_a_watcher_sees_frames_but_cannot_control(live_runs, visitor_session):
    key, visitor = visitor_session
    run = await create_run(visitor)
    owner, _ = await connect(run.id, key)
    watcher, hello = await connect(run.id)
    assert hello["can_control"] is False
    await frames(watcher, 3)
    await watcher.send_json_to({"type": "pause", "ref": "p"})
    error = await next_of(watcher, "error")
    assert error == {
        "type": "error",
        "ref": "p",
        "field": "type",
        "message": "only the run's owner can control it; you are watching",
    }
    await watcher.send_json_to({"type": "ping", "ref": 9})
    assert (await next_of(watcher, "pong"))["ref"] == 9
    assert (await reload(run)).status == Run.Status.RUNNING
    await watcher.disconnect()
    await stop(owner)


@pytest.mark.parametrize(
    ("message", "field", "words"),
    [
        ("not json", "message", "not valid JSON"),
        ([1, 2], "message", "must be a JSON object; got an array"),
        ("[" * 4000 + "]" * 4000, "message", "nested at most 8 levels deep"),
        ('{"type": "ping", "pad": "' + "x" * 9000 + '"}', "message", "8192 bytes"),
        ('{"type": "speed", "value": NaN}', "message", "NaN is not a JSON number"),
        ({"type": "explode"}, "type", "types: pause, resume, step, speed"),
        ({"type": "speed", "value": 3}, "value", "0.25, 0.5, 1, 2, 4, 8"),
        (
            {"type": "set", "name": "colour", "value": 1},
            "colour",
            "its parameters: keys, zipf_s",
        ),
        (
            {"type": "set", "name": "capacity", "value": -5},
            "capacity",
            "from 1 to 1000000",
        ),
        (
            {"type": "command", "name": "resize", "args": {"capacity": "big"}},
            "resize.capacity",
            "an integer",
        ),
        ({"type": "seen", "seq": "x"}, "seq", "an integer of at least 0"),
        ({"type": "seen", "seq": True}, "seq", "an integer of at least 0; got True"),
        ({"type": "seen", "seq": 1, "ack": 1}, "ack", "its fields: type, seq, ref"),
        ({"type": "ping", "ref": [1]}, "ref", "a string of at most 100 characters"),
    ],
)
async def test_bad_messages_get_an_error_naming_the_field_and_the_socket_stays_open(
    live_runs, visitor_session, message, field, words
):
    key, visitor = visitor_session
    run = await create_run(visitor)
    comm, _ = await connect(run.id, key)
    if isinstance(message, str):
        await comm.send_to(text_data=message)
    else:
        await comm.send_json_to(message)
    error = await next_of(comm, "error")
    assert error["field"] == field
    assert words in error["message"]
    await comm.send_json_to({"type": "ping"})
    await next_of(comm, "pong")
    await stop(comm)


async def test_an_unknown_run_gets_an_error_and_is_closed(live_runs):
    comm = WebsocketCommunicator(
        application,
        "/ws/runs/00000000-0000-0000-0000-000000000000/",
        headers=[(b"origin", b"http://localhost")],
    )
    connected, _ = await comm.connect()
    assert connected
    error = await comm.receive_json_from(timeout=5)
    assert error["field"] == "run"
    assert (await comm.receive_output(timeout=5))["code"] == 4404


async def test_a_malformed_run_id_is_refused_at_the_handshake():
    comm = WebsocketCommunicator(
        application,
        "/ws/runs/not-a-uuid/",
        headers=[(b"origin", b"http://localhost")],
    )
    connected, _ = await comm.connect()
    assert not connected


async def test_a_client_that_reconnects_resumes_after_the_last_frame_it_saw(
    live_runs, visitor_session
):
    key, visitor = visitor_session
    run = await create_run(visitor)
    comm, _ = await connect(run.id, key)
    seen = (await frames(comm, 6))[-1]["seq"]
    await comm.disconnect()
    await asyncio.sleep(1.0)  # frames go on while nobody is connected
    comm, _ = await connect(run.id, key, after=seen)
    replayed = await frames(comm, 12)
    assert replayed[0]["seq"] == seen + 1
    assert [f["seq"] for f in replayed] == list(range(seen + 1, seen + 13))
    await stop(comm)


async def test_a_viewer_that_does_not_acknowledge_gets_a_bounded_number_of_frames(
    live_runs, visitor_session
):
    key, visitor = visitor_session
    run = await create_run(visitor)
    comm, hello = await connect(run.id, key)
    await comm.send_json_to({"type": "speed", "value": 8})
    window = hello["window"]
    got: list[int] = []
    loop = asyncio.get_running_loop()

    async def gather(until):
        while loop.time() < until:
            if await comm.receive_nothing(timeout=0.1):
                continue
            message = await comm.receive_json_from()
            if message["type"] == "frame":
                got.append(message["seq"])

    # A window's worth arrives (given a slow machine all the time it needs),
    # then nothing more while the viewer stays silent: 1.5 s would be 15
    # frames at 10 a second.
    deadline = loop.time() + 30
    while len(got) < window - 2 and loop.time() < deadline:
        await gather(loop.time() + 0.5)
    await gather(loop.time() + 1.5)
    assert window - 2 <= len(got) <= window + 1  # held back, not queued without end
    await comm.send_json_to({"type": "seen", "seq": got[-1]})
    newest = await next_of(comm, "frame")
    assert newest["seq"] > got[-1] + 5  # the newest frame, not the backlog
    await stop(comm)


async def test_a_viewer_joining_a_run_already_going_gets_a_replay_and_keeps_flowing(
    live_runs, visitor_session
):
    key, visitor = visitor_session
    run = await create_run(visitor)
    owner, _ = await connect(run.id, key)
    await frames(owner, 90)  # nine seconds of frames before the second viewer comes
    late, _ = await connect(run.id)
    got = await frames(late, 130)  # more than the replay and the flow-control window
    seqs = [f["seq"] for f in got]
    assert seqs == sorted(set(seqs))
    assert seqs[-1] > 95
    await late.disconnect()
    await stop(owner)
