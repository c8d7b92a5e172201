"""The run websocket: validate, authorise, forward. Consumers never simulate."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from scalelab.limits import Bucket

from .engines import get_engine
from .engines.base import EngineError
from .hub import get_hub
from .models import Run
from .runs.access import can_control
from .runs.constants import LIVE
from .runs.lifecycle import run_status
from .transport import TRANSIENT_ERRORS, get_transport
from .validation import MESSAGES, json_object, message_ref, validate

log = logging.getLogger(__name__)

WINDOW = 50  # frames a viewer may be behind on its acknowledgements before frames are skipped
MAX_MESSAGE = 8192
# Messages a connection may send a second: all of them together (counted before a
# message is even parsed), then each type. The browser acknowledges every fifth
# frame (at most 6 a second) and pings rarely; a person clicks far below 20.
RATES = {"seen": 20, "ping": 5, "control": 20}
MESSAGES_PER_S = sum(RATES.values())
# A connection that keeps sending once told to slow down is closed with this code.
FLOOD_CLOSE = 4429
FLOOD_DROPS = 200


@database_sync_to_async
def _load(run_id: str, scope) -> tuple[Run | None, bool]:
    run = Run.objects.filter(id=run_id).first()
    if run is None:
        return None, False
    session = scope.get("session")
    visitor = session.get("visitor", "") if session is not None else ""
    return run, can_control(run, scope.get("user"), visitor)


class RunConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.viewer_id = uuid.uuid4().hex
        self.run_id = self.scope["url_route"]["kwargs"]["run_id"]
        self.joined = False
        self.last_id = (0, 0)
        self.seen = 0  # the last frame the client says it has received
        self.sent = 0  # the last frame queued to its socket
        self.held: tuple[int, str] | None = None
        self.skipped = 0
        self.status = None
        self.outbox: deque[str] = deque()
        self.sending = False
        self.budget = Bucket(MESSAGES_PER_S)
        self.buckets = {kind: Bucket(rate) for kind, rate in RATES.items()}
        self.warned: dict[str, float] = {}
        self.dropped = 0
        await self.accept()
        run, self.can_control = await _load(self.run_id, self.scope)
        if run is None:
            await self._error("run", "there is no run with this id", None)
            await self.close(code=4404)
            return
        self.kind = run.kind
        self.status = run.status
        after = self._after()
        self.seen = self.sent = after
        await self.send(
            text_data=json.dumps(
                {
                    "type": "hello",
                    "run": run_status(run),
                    "can_control": self.can_control,
                    "engine": get_engine(run.kind).describe(),
                    "window": WINDOW,
                }
            )
        )
        await get_hub().join(self.run_id, self, after)
        self.joined = True

    def _after(self) -> int:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            return max(0, int(query.get("after", ["0"])[0]))
        except ValueError:
            return 0

    async def disconnect(self, code):
        if getattr(self, "joined", False):
            await get_hub().leave(self.run_id, self)

    # from the hub (runs in this event loop)

    def deliver(self, seq: int, sub: int, text: str) -> None:
        if (seq, sub) <= self.last_id:
            return
        self.last_id = (seq, sub)
        if sub:
            self.status = json.loads(text).get("status", self.status)
            self._send_soon(text)
        elif self.sent - self.seen >= WINDOW:
            # A slow viewer gets the newest frame when it catches up, not a backlog.
            self.held = (seq, text)
            self.skipped += 1
        else:
            self._send_frame(seq, text)

    def deliver_snapshot(self, seq: int, text: str) -> None:
        self.last_id = (seq, 0)
        self.held = None
        self.sent = seq
        self._send_soon('{"type":"snapshot","frame":' + text + "}")

    def _send_frame(self, seq: int, text: str) -> None:
        self.sent = seq
        self.held = None
        self._send_soon(text)

    def _acknowledged(self, seq: int) -> None:
        # A client cannot have seen more than was sent to it.
        self.seen = max(self.seen, min(seq, self.sent))
        if self.held and self.sent - self.seen <= WINDOW // 2:
            self._send_frame(*self.held)

    def _send_soon(self, text: str) -> None:
        # One sender task per viewer keeps messages in order.
        self.outbox.append(text)
        if not self.sending:
            self.sending = True
            asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.outbox:
                await self.send(text_data=self.outbox.popleft())
        except Exception:  # the socket went away; disconnect() cleans up
            self.outbox.clear()
        finally:
            self.sending = False

    # from the browser

    async def receive(self, text_data=None, bytes_data=None):
        if not self.budget.take():
            await self._flooded("message", MESSAGES_PER_S, "messages")
            return
        ref = None
        try:
            try:
                message = json_object(
                    text_data, field="message", what="a message", limit=MAX_MESSAGE
                )
            except EngineError as exc:
                await self._error(exc.field, exc.message, None)
                return
            ref = message_ref(message)
            await self._handle(message, ref)
        except Exception:
            log.exception("run %s: message could not be handled", self.run_id)
            await self._error(
                "message", "the server could not handle this message", ref
            )

    async def _handle(self, message, ref) -> None:
        try:
            message = validate(MESSAGES, message, kind=self.kind)
        except EngineError as exc:
            await self._error(exc.field, exc.message, ref)
            return
        kind = message["type"] if message["type"] in RATES else "control"
        if not self.buckets[kind].take():
            what = {"seen": "acknowledgements", "ping": "pings"}.get(kind, "controls")
            await self._flooded(kind, RATES[kind], what, ref)
            return
        self.dropped = 0
        if message["type"] == "seen":
            self._acknowledged(message["seq"])
            return
        if message["type"] == "ping":
            await self.send(text_data=json.dumps({"type": "pong", "ref": ref}))
            return
        if not self.can_control:
            await self._error(
                "type", "only the run's owner can control it; you are watching", ref
            )
            return
        if self.status not in LIVE:
            await self._error(
                "run", f"the run has ended ({self.status}); start a new one", ref
            )
            return
        try:
            await get_transport().apush_control(self.run_id, message)
        except TRANSIENT_ERRORS:
            await self._error(
                "run", "the run cannot be reached just now; try again in a moment", ref
            )
            return
        await self.send(
            text_data=json.dumps(
                {"type": "accepted", "ref": ref, "action": message["type"]}
            )
        )

    async def _flooded(self, kind: str, rate: int, what: str, ref=None) -> None:
        """Drop a message over its rate: say so once a second, close on a flood."""
        self.dropped += 1
        if self.dropped >= FLOOD_DROPS:
            log.warning("run %s: a viewer flooded its socket; closed", self.run_id)
            await self.close(code=FLOOD_CLOSE)
            return
        now = time.monotonic()
        if now - self.warned.get(kind, -1.0) >= 1.0:
            self.warned[kind] = now
            await self._error("type", f"too many {what}: at most {rate} a second", ref)

    async def _error(self, field: str, message: str, ref) -> None:
        await self.send(
            text_data=json.dumps(
                {"type": "error", "ref": ref, "field": field, "message": message}
            )
        )
