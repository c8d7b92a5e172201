"""Distributed mode with real processes: Daphne, two Celery workers, Redis.

A worker driving a run is killed with SIGKILL mid-run; the other worker takes the
run over from its checkpoint and the viewer's frames go on, strictly increasing
and never repeated.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
import redis

from tests.stack import Process, Session, distributed_stack, free_port

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(240)]

REDIS_DB = 13  # this test's own Redis database, emptied before and after
PG_DB = "scalelab_test_distributed"


@pytest.fixture
def stack(tmp_path):
    yield from _stack(tmp_path, f"redis://127.0.0.1:6379/{REDIS_DB}")


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of this test's own on a free loopback port, to restart at will."""
    port = free_port()
    args = [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    server = {"proc": Process(args, dict(os.environ), tmp_path / "redis.log")}

    def restart(down_for: float = 1.0) -> None:
        server["proc"].kill()
        server["proc"].proc.wait(10)
        time.sleep(down_for)
        server["proc"] = Process(args, dict(os.environ), tmp_path / "redis2.log")
        _wait_for_redis(port)

    _wait_for_redis(port)
    yield f"redis://127.0.0.1:{port}/0", restart
    server["proc"].stop()


def _wait_for_redis(port: int) -> None:
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _stack(tmp_path, url):
    """Daphne and two workers on ``url``: yields (base URL, Redis client, processes)."""
    stack = distributed_stack(
        tmp_path,
        url,
        PG_DB,
        env={"SCALELAB_CHECKPOINT_S": "1", "SCALELAB_LEASE_S": "3"},
    )
    bases, client, procs = next(stack)
    try:
        yield bases["web"], client, procs
    finally:
        stack.close()


async def watch(base, session, run_id, until, on_frame):
    import websockets

    url = base.replace("http", "ws") + f"/ws/runs/{run_id}/?after=0"
    headers = {"Origin": base, "Cookie": f"sessionid={session.cookie('sessionid')}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello" and hello["can_control"]
        while time.monotonic() < until:
            try:
                message = json.loads(
                    await asyncio.wait_for(
                        ws.recv(), max(0.1, until - time.monotonic())
                    )
                )
            except TimeoutError:
                break
            if message["type"] == "frame":
                await ws.send(json.dumps({"type": "seen", "seq": message["seq"]}))
                if on_frame(message) == "stop":
                    await ws.send(json.dumps({"type": "stop"}))
                    return


def test_a_run_survives_its_worker_being_killed(stack):
    base, client, procs = stack
    session = Session(base)
    run_id = session.create_run("cache", read_rate=400)["id"]
    frames: list[tuple[float, int]] = []
    killed: dict[str, object] = {}

    def on_frame(frame):
        frames.append((time.monotonic(), frame["seq"]))
        if len(frames) == 30 and not killed:
            holder = client.get(f"sl:run:{run_id}:lease").decode()
            pid = int(holder.split(":")[1])
            victim = next(name for name, p in procs.items() if p.pid == pid)
            procs[victim].kill()
            killed.update(name=victim, pid=pid, at=time.monotonic(), seq=frame["seq"])
        if killed and frame["seq"] >= killed["seq"] + 40:
            return "stop"
        return None

    asyncio.run(watch(base, session, run_id, time.monotonic() + 60, on_frame))

    assert killed, "no frames arrived before the kill"
    seqs = [s for _, s in frames]
    assert seqs == sorted(set(seqs)), (
        "frame numbers must strictly increase with no repeats"
    )
    after = [(t, s) for t, s in frames if s > killed["seq"]]
    assert len(after) >= 40, (
        f"the run did not resume after its worker was killed:\n{procs['w1'].output()}"
    )
    gap = after[0][0] - killed["at"]
    assert gap < 8.0, f"the run took {gap:.1f} s to resume"
    holder = client.get(f"sl:run:{run_id}:lease")
    survivor_pid = next(
        p.pid for name, p in procs.items() if name not in ("web", killed["name"])
    )
    assert holder is None or int(holder.decode().split(":")[1]) == survivor_pid


def test_streams_survive_a_redis_restart_without_a_page_reload(tmp_path, private_redis):
    url, restart = private_redis
    gen = _stack(tmp_path, url)
    base, client, procs = next(gen)
    try:
        session = Session(base)
        run_id = session.create_run("cache")["id"]
        frames: list[tuple[float, int]] = []
        restarted: dict[str, float] = {}

        def on_frame(frame):
            frames.append((time.monotonic(), frame["seq"]))
            if len(frames) == 20 and not restarted:
                restarted["seq"] = frame["seq"]
                restart(1.0)
                restarted["at"] = time.monotonic()
            # Thirty frames after the restart, counted as received: frames still
            # on their way when Redis lost its streams may be skipped (the viewer
            # gets a snapshot instead), so their numbers can jump.
            if restarted and sum(s > restarted["seq"] for _, s in frames) >= 30:
                return "stop"
            return None

        # One websocket for the whole test: the page never reloads.
        asyncio.run(watch(base, session, run_id, time.monotonic() + 60, on_frame))
        seqs = [s for _, s in frames]
        assert seqs == sorted(set(seqs))
        after = [t for t, s in frames if s > restarted["seq"]]
        assert len(after) >= 30, (
            f"frames did not resume after Redis came back: {len(after)} in "
            f"{time.monotonic() - restarted['at']:.1f} s, numbers "
            f"{[s for _, s in frames if s > restarted['seq']][:40]}"
        )
        assert after[0] - restarted["at"] < 8.0
    finally:
        next(gen, None)
