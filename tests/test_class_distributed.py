"""A class session served by two Daphne processes sharing one database and Redis.

The teacher and one student are on Daphne A, another student and a stranger on
Daphne B. Whatever the teacher does on A (the step, pause all, the shared run, a
poll and its reveal, the mode, the end) reaches the student on B, and the answers
given on both processes are counted together: no session state lives only in one
process's memory.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.stack import Session, distributed_stack

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(180)]

REDIS_DB = 11  # this test's own Redis database, emptied before and after
PG_DB = "scalelab_test_class_distributed"
# A published lesson of the cache engine whose steps 0 and 1 ask a choice.
LESSON = "caching-and-eviction"
POLLED = 1  # "Shrink the cache": three choices
TEACHER, PASSWORD = "ines", "pw-for-tests-only"
WAIT_S = 10.0  # the longest any one message may take to arrive


MAKE_INSTRUCTOR = f"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
user = get_user_model().objects.create_user({TEACHER!r}, password={PASSWORD!r})
user.groups.add(Group.objects.get_or_create(name="Instructors")[0])
"""


@pytest.fixture
def two_webs(tmp_path):
    """Daphne A and Daphne B, one Celery worker, one database, one Redis database."""
    stack = distributed_stack(
        tmp_path,
        f"redis://127.0.0.1:6379/{REDIS_DB}",
        PG_DB,
        webs=("a", "b"),
        workers=("w1",),
        setup=(("loadlessons",), ("shell", "-c", MAKE_INSTRUCTOR)),
    )
    bases, _, procs = next(stack)
    try:
        yield bases["a"], bases["b"], procs
    finally:
        stack.close()


# HTTP, as the pages do it ------------------------------------------------------------


def post_json(session: Session, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{session.base}{path}",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "X-CSRFToken": session.cookie("csrftoken"),
            "Origin": session.base,
            "Referer": f"{session.base}/",
        },
    )
    try:
        with session.opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def sign_in(session: Session, username: str, password: str) -> None:
    """Sign in with the sign-in form, as the teacher does in a browser."""
    session.opener.open(f"{session.base}/accounts/login/", timeout=10).read()
    form = urllib.parse.urlencode(
        {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookie("csrftoken"),
        }
    ).encode()
    request = urllib.request.Request(
        f"{session.base}/accounts/login/",
        data=form,
        headers={"Origin": session.base, "Referer": f"{session.base}/accounts/login/"},
    )
    with session.opener.open(request, timeout=10) as response:
        # A good sign-in redirects away from the form (to the lesson index).
        assert not response.url.endswith("/accounts/login/"), "the sign-in was refused"


# Websockets -----------------------------------------------------------------------


class Socket:
    """A websocket of a page: every message it received, in order."""

    def __init__(self, ws, who: str) -> None:
        self.ws = ws
        self.who = who
        self.got: list[dict] = []

    @classmethod
    async def open(cls, session: Session, base: str, path: str, who: str) -> Socket:
        import websockets

        headers = {
            "Origin": base,
            "Cookie": f"sessionid={session.cookie('sessionid')}",
        }
        ws = await websockets.connect(
            base.replace("http", "ws") + path,
            additional_headers=headers,
            open_timeout=WAIT_S,
            close_timeout=2,
        )
        return cls(ws, who)

    async def send(self, **message) -> None:
        await self.ws.send(json.dumps(message))

    async def next_of(
        self, kind: str, timeout: float = WAIT_S, where=None, **fields
    ) -> dict:
        """The next message of this type with these fields (and for which ``where``
        holds), within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = json.loads(await asyncio.wait_for(self.ws.recv(), remaining))
            except TimeoutError:
                raise AssertionError(
                    f"{self.who} got no {kind} {fields} within {timeout} s; "
                    f"the last messages: {self.got[-4:]}"
                ) from None
            self.got.append(message)
            if (
                message.get("type") == kind
                and all(message.get(k) == v for k, v in fields.items())
                and (where is None or where(message))
            ):
                return message

    async def command(self, **message) -> None:
        """Send a message and wait for the server to say it was carried out."""
        await self.send(**message)
        reply = await self.next_of_any(("accepted", "error"))
        assert reply == {"type": "accepted", "action": message["type"]}, reply

    async def next_of_any(self, kinds: tuple[str, ...]) -> dict:
        deadline = time.monotonic() + WAIT_S
        while True:
            remaining = max(0.01, deadline - time.monotonic())
            try:
                message = json.loads(await asyncio.wait_for(self.ws.recv(), remaining))
            except TimeoutError:
                raise AssertionError(
                    f"{self.who} got no reply {kinds}; the last: {self.got[-4:]}"
                ) from None
            self.got.append(message)
            if message.get("type") in kinds:
                return message

    async def close(self) -> None:
        await self.ws.close()


async def frames_of(socket: Socket, count: int) -> list[int]:
    """The numbers of the first ``count`` frames of a run socket, acknowledged."""
    seqs: list[int] = []
    while len(seqs) < count:
        # The first frame waits for the worker to take the run up.
        frame = await socket.next_of("frame", timeout=30 if not seqs else WAIT_S)
        seqs.append(frame["seq"])
        await socket.send(type="seen", seq=frame["seq"])
    return seqs


# The test -------------------------------------------------------------------------


def test_a_class_spread_over_two_daphne_processes_sees_one_state(two_webs):
    a, b, procs = two_webs
    try:
        asyncio.run(asyncio.wait_for(_class_over_two_processes(a, b), 120))
    except BaseException:
        for name, proc in procs.items():
            print(f"--- {name} ---\n{proc.output()}")
        raise


async def _class_over_two_processes(a: str, b: str) -> None:
    http = asyncio.to_thread

    # The teacher signs in on A and starts a class on a published lesson.
    teacher = await http(Session, a)
    await http(sign_in, teacher, TEACHER, PASSWORD)
    status, started = await http(
        post_json, teacher, "/api/classes/", {"lesson": LESSON, "mode": "teacher"}
    )
    assert status == 201, started
    code = started["code"]

    # One student joins on A, the other on B; each opens the class socket there.
    ada, bo = await http(Session, a), await http(Session, b)
    for phone, name in ((ada, "Ada"), (bo, "Bo")):
        status, joined = await http(
            post_json, phone, f"/api/classes/{code}/join", {"name": name}
        )
        assert status == 201 and joined["lesson"] == LESSON, joined

    desk = await Socket.open(teacher, a, f"/ws/classes/{code}/", "the teacher on A")
    assert await desk.next_of("hello") == {"type": "hello", "role": "teacher"}
    assert (await desk.next_of("class.state"))["members"] == 2
    on_a = await Socket.open(ada, a, f"/ws/classes/{code}/", "the student on A")
    on_b = await Socket.open(bo, b, f"/ws/classes/{code}/", "the student on B")
    for phone in (on_a, on_b):
        assert (await phone.next_of("hello"))["role"] == "student"
        state = await phone.next_of("class.state")
        assert state["code"] == code and state["paused"] is False

    # A visitor who has not joined is turned away on B.
    stranger = await http(Session, b)
    door = await Socket.open(stranger, b, f"/ws/classes/{code}/", "the stranger on B")
    refused = await door.next_of("error")
    assert refused["field"] == "code" and "join the class first" in refused["message"]
    await asyncio.wait_for(door.ws.wait_closed(), WAIT_S)
    assert door.ws.close_code == 4403

    # The teacher's step and "pause all", sent on A, reach the student on B.
    await desk.command(type="step", step=POLLED)
    await desk.command(type="pause_all")
    await on_b.next_of("class.state", step=POLLED, paused=True)

    # The teacher's run, started on A, is the class's; the student on B watches it.
    run = await http(teacher.create_run, "cache")
    await desk.command(type="run", run=run["id"])
    await on_b.next_of("class.state", run=run["id"])
    viewer = await Socket.open(bo, b, f"/ws/runs/{run['id']}/?after=0", "B's run")
    hello = await viewer.next_of("hello")
    assert hello["can_control"] is False and hello["engine"]["kind"] == "cache"
    seqs = await frames_of(viewer, 5)
    assert seqs == sorted(set(seqs)), seqs
    await viewer.close()

    # A poll: both students answer, one on each process; the teacher counts two.
    await desk.command(type="poll.open", step=POLLED)
    await on_b.next_of("poll.count", step=POLLED, state="open")
    await on_a.next_of("poll.count", step=POLLED, state="open")
    await on_a.command(type="poll.answer", step=POLLED, value=1)
    await on_b.command(type="poll.answer", step=POLLED, value=2)
    results = await desk.next_of("poll.results", step=POLLED, answers=2)
    assert results["counts"] == [0, 1, 1] and results["state"] == "open"
    await desk.command(type="poll.close", step=POLLED)
    await on_b.next_of("poll.count", step=POLLED, state="closed")
    await desk.command(type="poll.reveal", step=POLLED)
    shown = await on_b.next_of("poll.results", step=POLLED, state="revealed")
    assert shown["answers"] == 2 and shown["counts"] == [0, 1, 1]
    before = on_b.got[: on_b.got.index(shown)]
    assert not [m for m in before if m["type"] == "poll.results"], (
        "the student on B saw the answers before the reveal"
    )
    assert all("counts" not in m and "histogram" not in m for m in before)

    # The teacher lets the class go at its own pace: B sees the mode change.
    await desk.command(type="mode", mode="student")
    await on_b.next_of("class.state", mode="student")

    # At their own pace, the student on B moves on: the teacher on A sees where.
    await on_b.command(type="progress", step=2)
    board = await desk.next_of(
        "class.members",
        where=lambda m: any(s["name"] == "Bo" and s["step"] == 2 for s in m["members"]),
    )
    assert [s["name"] for s in board["members"]] == ["Ada", "Bo"], board

    # The end reaches B, and B refuses a new join from then on.
    await desk.command(type="end")
    await on_b.next_of("class.state", ended=True)
    late = await http(Session, b)
    status, body = await http(post_json, late, f"/api/classes/{code}/join", {})
    assert status == 404 and "ended" in body["errors"]["code"], body
    for socket in (desk, on_a, on_b):
        await socket.close()
