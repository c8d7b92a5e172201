"""The class websocket: the session's state to every member, controls from the teacher.

The class socket carries session messages only (the step, pause all, polls); the
shared run streams on its own run socket. Nothing lives only in one process: each
message changes rows, and one watcher per session in each process reads the
session's ``version`` a few times a second and sends the new state to that
process's sockets of the session, so a class spread over several Daphne processes
sees one state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db.models import Count, Max

from scalelab.limits import Bucket
from simulations.engines.base import EngineError
from simulations.validation import json_object, validate

from . import classes
from .models import ClassMember, ClassSession

log = logging.getLogger(__name__)

WATCH_S = 0.25  # how often a process reads the version of each session it serves
MEMBERS_S = 1.0  # the teacher's dashboard is sent again at most this often
MESSAGES_PER_S = 20
MAX_MESSAGE = 2048

# The class sockets' database work runs on a few threads of its own. Channels would
# run it on the one thread a process shares for all sync code, where a class of 300
# answering at once queued behind one another (and every other socket's work) for
# seconds. Few threads: each holds a database connection while it works.
# SQLite takes one writer at a time, and threads waiting on its lock back off for
# tens of milliseconds each: one thread there.
_POOL = ThreadPoolExecutor(
    max_workers=1 if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") else 4,
    thread_name_prefix="class-db",
)


def database_sync_to_async(func):
    return DatabaseSyncToAsync(func, thread_sensitive=False, executor=_POOL)


@database_sync_to_async
def _open(
    code: str, scope
) -> tuple[ClassSession | None, str, ClassMember | None, tuple[int, str]]:
    """Return (session, role, member, (close code, why not)) for the socket's user."""
    try:
        session = classes.class_live(code)
    except classes.ClassError as exc:
        return None, "", None, (4404, exc.message)
    user = scope.get("user")
    if user is not None and user.is_authenticated and user.pk == session.teacher_id:
        return session, "teacher", None, (0, "")
    store = scope.get("session")
    member_id = store.get(f"class:{session.code}") if store is not None else None
    member = (
        ClassMember.objects.filter(pk=member_id, session=session).first()
        if member_id
        else None
    )
    if member is None:
        return None, "", None, (4403, "join the class first: its code, at /join/")
    return session, "student", member, (0, "")


@database_sync_to_async
def _state(
    code: str, role: str, members: bool = True
) -> tuple[tuple | None, list[dict[str, Any]]]:
    """The session's version and the messages a socket of ``role`` is sent for it
    (for the teacher, the dashboard too unless ``members`` is false)."""
    stamp = _stamp(code)  # first: a change after it is sent again, never missed
    session = ClassSession.objects.select_related("lesson").get(code=code)
    out = [classes.state_of(session)]
    teacher = role == "teacher"
    if session.poll:
        if teacher or session.poll == ClassSession.Poll.REVEALED:
            out.append(classes.poll_results(session, session.poll_step))
        else:
            out.append(
                {"type": "poll.count", "step": session.poll_step, "state": session.poll}
            )
    # A question's answers reach students once it is closed; the teacher's, live.
    if session.question_state and (
        teacher or session.question_state == ClassSession.Poll.CLOSED
    ):
        out.append(classes.question_results(session, session.question))
    if teacher and members:
        out.append(classes.members_of(session))
    return stamp, out


@database_sync_to_async
def _members(code: str) -> dict[str, Any]:
    session = ClassSession.objects.select_related("lesson").get(code=code)
    return classes.members_of(session)


@database_sync_to_async
def _place(member_id: int) -> dict[str, Any]:
    """A student's own place in the class, for their page when it (re)connects."""
    member = ClassMember.objects.get(pk=member_id)
    answers = member.answers.all()
    return {
        "step": member.step,
        "predictions": {
            a.step: a.choice if a.choice is not None else a.value
            for a in answers
            if a.kind == "step"
        },
        "answers": {
            a.step: a.choice if a.choice is not None else a.value
            for a in answers
            if a.kind == "question"
        },
    }


@database_sync_to_async
def _version(code: str) -> tuple | None:
    return _stamp(code)


def _stamp(code: str) -> tuple | None:
    """What a change of the session moves: its version, and its answers' count and
    latest time (answers do not touch the session's row)."""
    return (
        ClassSession.objects.filter(code=code)
        .annotate(answered=Count("answers"), last=Max("answers__answered_at"))
        .values_list("version", "answered", "last")
        .first()
    )


@database_sync_to_async
def _act(code: str, role: str, member_id: int | None, message: dict[str, Any]) -> None:
    session = ClassSession.objects.select_related("lesson").get(code=code)
    if session.ended_at is not None:
        raise EngineError("code", "this class has ended")
    if message["type"] == "progress":
        member = ClassMember(pk=member_id, session=session)
        classes.progress(session, member, message["step"])
    else:
        classes.teacher_control(session, message)


ANSWERS = ("poll.answer", "question.answer")
BATCH_S = 0.05  # the answers a process receives in this long are written together


@database_sync_to_async
def _answer_all(
    code: str, batch: list[tuple[int, dict[str, Any]]]
) -> list[EngineError | None]:
    """Check and save a batch of (member id, answer): each one's error, or None."""
    session = ClassSession.objects.select_related("lesson").get(code=code)
    if session.ended_at is not None:
        return [EngineError("code", "this class has ended")] * len(batch)
    lookups: dict = {}
    outcomes: list[EngineError | None] = []
    rows = []
    for member_id, message in batch:
        try:
            rows.append((member_id, *classes.answer_of(session, message, lookups)))
            outcomes.append(None)
        except EngineError as exc:
            outcomes.append(exc)
    classes.record_answers(session, rows)
    return outcomes


class Answers:
    """One per session per process: the answers its sockets received, written in
    one go a moment later (a class answers all at once)."""

    writers: dict[tuple[int, str], Answers] = {}

    def __init__(self, code: str) -> None:
        self.code = code
        self.pending: list[tuple[int, dict[str, Any], asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    @classmethod
    async def submit(cls, code: str, member_id: int, message: dict[str, Any]) -> None:
        """Save an answer with the others of the moment; raise its EngineError."""
        loop = asyncio.get_running_loop()
        key = (id(loop), code)
        writer = cls.writers.get(key)
        if writer is None:
            writer = cls.writers[key] = Answers(code)
        done = loop.create_future()
        writer.pending.append((member_id, message, done))
        if writer.task is None or writer.task.done():
            writer.task = loop.create_task(writer.write())
        error = await done
        if error is not None:
            raise error

    async def write(self) -> None:
        while self.pending:
            await asyncio.sleep(BATCH_S)
            batch, self.pending = self.pending, []
            try:
                outcomes = await _answer_all(
                    self.code, [(m, message) for m, message, _ in batch]
                )
            except Exception as exc:  # noqa: BLE001 - each waiting socket is told
                log.exception("class %s: answers could not be saved", self.code)
                outcomes = [exc] * len(batch)
            for (_, _, done), outcome in zip(batch, outcomes, strict=True):
                if not done.done():
                    done.set_result(outcome)
        key = (id(asyncio.get_running_loop()), self.code)
        if Answers.writers.get(key) is self:
            del Answers.writers[key]


class Watcher:
    """One per session per process: sends each new state to the process's sockets."""

    # Keyed by event loop too: each loop (a process's, or a test's) has its own.
    watchers: dict[tuple[int, str], Watcher] = {}

    def __init__(self, code: str) -> None:
        self.code = code
        self.sockets: set[ClassConsumer] = set()
        self.version: tuple | None = None
        self.stale: set[ClassConsumer] = set()  # joined with an older state
        self.members_due = False  # the dashboard is older than the state
        self.members_at = 0.0
        self.task: asyncio.Task | None = None
        self.key: tuple[int, str] = (0, code)

    @classmethod
    def join(cls, code: str, socket: ClassConsumer, version: tuple) -> None:
        """Add a socket that has been sent the state of ``version``."""
        key = (id(asyncio.get_running_loop()), code)
        watcher = cls.watchers.get(key)
        if watcher is None:
            watcher = cls.watchers[key] = Watcher(code)
            watcher.key = key
            watcher.version = version  # its sockets have that state already
        elif watcher.version != version:
            watcher.stale.add(socket)  # the state moved meanwhile: send it again
        watcher.sockets.add(socket)
        if watcher.task is None or watcher.task.done():
            watcher.task = asyncio.get_running_loop().create_task(watcher.run())

    @classmethod
    def leave(cls, code: str, socket: ClassConsumer) -> None:
        watcher = cls.watchers.get((id(asyncio.get_running_loop()), code))
        if watcher is not None:
            watcher.sockets.discard(socket)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.sockets:
                version = await _version(self.code)
                if version is not None and version != self.version:
                    self.version = version
                    self.stale.clear()
                    self.members_due = True
                    await self.send_all(self.sockets)
                elif self.stale:
                    stale, self.stale = self.stale, set()
                    await self.send_all(stale & self.sockets)
                # The dashboard costs the most to build: at most once a second,
                # and once more after the last change.
                teachers = [s for s in self.sockets if s.role == "teacher"]
                if (
                    self.members_due
                    and teachers
                    and loop.time() - self.members_at >= MEMBERS_S
                ):
                    self.members_due = False
                    self.members_at = loop.time()
                    board = [json.dumps(await _members(self.code))]
                    for socket in teachers:
                        await socket.send_texts(board)
                await asyncio.sleep(WATCH_S)
        except Exception:
            log.exception("class %s: its watcher stopped", self.code)
        finally:
            if not self.sockets and Watcher.watchers.get(self.key) is self:
                del Watcher.watchers[self.key]

    async def send_all(self, sockets: set[ClassConsumer]) -> None:
        # Made and encoded once per role, however many sockets there are.
        cache: dict[str, list[str]] = {}
        for socket in list(sockets):
            if socket.role not in cache:
                _, messages = await _state(self.code, socket.role, members=False)
                cache[socket.role] = [json.dumps(m) for m in messages]
            await socket.send_texts(cache[socket.role])


class ClassConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.code = classes.normalise_code(self.scope["url_route"]["kwargs"]["code"])
        self.role = ""
        self.budget = Bucket(MESSAGES_PER_S)
        await self.accept()
        session, self.role, member, (close, why) = await _open(self.code, self.scope)
        if session is None:
            await self.error("code", why)
            await self.close(code=close)
            return
        self.member_id = member.pk if member else None
        version, messages = await _state(self.code, self.role)
        hello = {"type": "hello", "role": self.role}
        if member is not None:
            hello["place"] = await _place(member.pk)
        await self.send(text_data=json.dumps(hello))
        await self.send_messages(messages)
        Watcher.join(self.code, self, version)

    async def disconnect(self, code):
        Watcher.leave(self.code, self)

    async def send_messages(self, messages: list[dict[str, Any]]) -> None:
        await self.send_texts([json.dumps(m) for m in messages])

    async def send_texts(self, texts: list[str]) -> None:
        with contextlib.suppress(Exception):  # a socket gone: disconnect() cleans up
            for text in texts:
                await self.send(text_data=text)

    async def receive(self, text_data=None, bytes_data=None):
        if not self.role:
            return
        if not self.budget.take():
            await self.error(
                "type", f"too many messages: at most {MESSAGES_PER_S} a second"
            )
            return
        try:
            message = validate(
                classes.MESSAGES,
                json_object(
                    text_data, field="message", what="a message", limit=MAX_MESSAGE
                ),
            )
        except EngineError as exc:
            await self.error(exc.field, exc.message)
            return
        kind = message["type"]
        if kind == "ping":
            await self.send(text_data=json.dumps({"type": "pong"}))
            return
        if kind in classes.TEACHER_MESSAGES and self.role != "teacher":
            await self.error("type", f"only the teacher can send {kind}")
            return
        if kind in classes.STUDENT_MESSAGES and self.role != "student":
            await self.error("type", f"only students send {kind}")
            return
        try:
            if kind in ANSWERS:
                await Answers.submit(self.code, self.member_id, message)
            else:
                await _act(self.code, self.role, self.member_id, message)
        except EngineError as exc:
            await self.error(exc.field, exc.message)
            return
        except Exception:
            log.exception("class %s: message could not be handled", self.code)
            await self.error("message", "the server could not handle this message")
            return
        await self.send(text_data=json.dumps({"type": "accepted", "action": kind}))

    async def error(self, field: str, message: str) -> None:
        await self.send(
            text_data=json.dumps({"type": "error", "field": field, "message": message})
        )
