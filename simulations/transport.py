"""How runs move frames, controls and leases between processes.

Two transports share one interface: ``MemoryTransport`` for embedded mode (one
process; worker threads hand frames to event loops with ``call_soon_threadsafe``)
and ``RedisTransport`` for distributed mode (a Redis stream per run is the replay
buffer, a list per run the control inbox, a key with a TTL the worker's lease).

Frames and status messages carry an id ``(seq, sub)``: a frame is ``(seq, 0)``,
status messages after it ``(seq, 1)``, ``(seq, 2)``... A message is published
only if its id is greater than the last one, so a worker that resumes a run from
a checkpoint and regenerates frames already sent cannot send them twice.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from django.conf import settings

try:
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import TimeoutError as _RedisTimeoutError

    TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
        _RedisConnectionError,
        _RedisTimeoutError,
        ConnectionError,
        TimeoutError,
    )
except ImportError:  # pragma: no cover - redis is a requirement
    TRANSIENT_ERRORS = (ConnectionError, TimeoutError)

Entry = tuple[int, int, str]  # (seq, sub, message text)
Deliver = Callable[[str, int, int, str], None]


class Transport:
    """The interface; see the module docstring."""

    # Worker side (synchronous, any thread) --------------------------------
    def publish(self, run_id: str, seq: int, sub: int, text: str) -> bool: ...
    def last_id(self, run_id: str) -> tuple[int, int]: ...
    def pop_controls(self, run_id: str) -> list[dict[str, Any]]: ...

    def acquire(self, run_id: str, token: str, ttl: float) -> bool: ...
    def renew(self, run_id: str, token: str, ttl: float) -> bool: ...
    def release(self, run_id: str, token: str) -> None: ...
    def leased(self, run_ids: list[str]) -> dict[str, bool]: ...
    def claim_dispatch(self, run_id: str, ttl: float) -> bool: ...
    def viewers(self, run_id: str) -> int: ...
    def push_control(self, run_id: str, message: dict[str, Any]) -> None: ...

    # Consumer side (asynchronous) -----------------------------------------
    async def apush_control(self, run_id: str, message: dict[str, Any]) -> None: ...
    async def aviewer(self, run_id: str, viewer: str, present: bool) -> None: ...
    async def areplay(self, run_id: str, after: int) -> tuple[list[Entry], bool]: ...
    async def aviewer_count(self, run_id: str) -> int: ...


def _parse_id(raw: str | bytes) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    seq, _, sub = text.partition("-")
    return int(seq), int(sub or 0)


class MemoryTransport(Transport):
    """Everything in this process, guarded by one lock."""

    def __init__(self, replay: int) -> None:
        self.replay_size = replay
        self.lock = threading.Lock()
        self.streams: dict[str, deque[Entry]] = {}
        self.last: dict[str, tuple[int, int]] = {}
        self.controls: dict[str, deque[dict[str, Any]]] = {}
        self.leases: dict[str, tuple[str, float]] = {}
        self.dispatches: dict[str, float] = {}
        self.present: dict[str, set[str]] = {}
        self.listeners: dict[str, set[tuple[asyncio.AbstractEventLoop, Deliver]]] = {}

    def publish(self, run_id: str, seq: int, sub: int, text: str) -> bool:
        with self.lock:
            if (seq, sub) <= self.last.get(run_id, (0, 0)):
                return False
            self.last[run_id] = (seq, sub)
            stream = self.streams.setdefault(run_id, deque(maxlen=self.replay_size))
            stream.append((seq, sub, text))
            listeners = list(self.listeners.get(run_id, ()))
        for loop, deliver in listeners:
            try:
                loop.call_soon_threadsafe(deliver, run_id, seq, sub, text)
            except RuntimeError:  # that loop is closed: its viewers are gone
                self.unlisten(run_id, loop, deliver)
        return True

    def listen(
        self, run_id: str, loop: asyncio.AbstractEventLoop, deliver: Deliver
    ) -> None:
        with self.lock:
            self.listeners.setdefault(run_id, set()).add((loop, deliver))

    def unlisten(
        self, run_id: str, loop: asyncio.AbstractEventLoop, deliver: Deliver
    ) -> None:
        with self.lock:
            self.listeners.get(run_id, set()).discard((loop, deliver))

    def last_id(self, run_id: str) -> tuple[int, int]:
        with self.lock:
            return self.last.get(run_id, (0, 0))

    def push_control(self, run_id: str, message: dict[str, Any]) -> None:
        with self.lock:
            self.controls.setdefault(run_id, deque()).append(message)

    def pop_controls(self, run_id: str) -> list[dict[str, Any]]:
        with self.lock:
            inbox = self.controls.get(run_id)
            if not inbox:
                return []
            out = list(inbox)
            inbox.clear()
            return out

    def acquire(self, run_id: str, token: str, ttl: float) -> bool:
        now = time.monotonic()
        with self.lock:
            holder = self.leases.get(run_id)
            if holder and holder[1] > now and holder[0] != token:
                return False
            self.leases[run_id] = (token, now + ttl)
            return True

    def renew(self, run_id: str, token: str, ttl: float) -> bool:
        return self.acquire(run_id, token, ttl)

    def release(self, run_id: str, token: str) -> None:
        with self.lock:
            if self.leases.get(run_id, ("",))[0] == token:
                del self.leases[run_id]

    def leased(self, run_ids: list[str]) -> dict[str, bool]:
        now = time.monotonic()
        with self.lock:
            return {r: r in self.leases and self.leases[r][1] > now for r in run_ids}

    def claim_dispatch(self, run_id: str, ttl: float) -> bool:
        now = time.monotonic()
        with self.lock:
            if self.dispatches.get(run_id, 0) > now:
                return False
            self.dispatches[run_id] = now + ttl
            return True

    def viewers(self, run_id: str) -> int:
        with self.lock:
            return len(self.present.get(run_id, ()))

    async def apush_control(self, run_id: str, message: dict[str, Any]) -> None:
        self.push_control(run_id, message)

    async def aviewer(self, run_id: str, viewer: str, present: bool) -> None:
        with self.lock:
            viewers = self.present.setdefault(run_id, set())
            if present:
                viewers.add(viewer)
            else:
                viewers.discard(viewer)

    async def aviewer_count(self, run_id: str) -> int:
        return self.viewers(run_id)

    async def areplay(self, run_id: str, after: int) -> tuple[list[Entry], bool]:
        with self.lock:
            stream = list(self.streams.get(run_id, ()))
        return _replay_from(stream, after)


def _replay_from(stream: list[Entry], after: int) -> tuple[list[Entry], bool]:
    """Return the entries after frame ``after``, and whether some were already dropped.

    When the buffer no longer reaches back to ``after`` the caller sends a snapshot
    (the latest frame) instead of a replay with a hole in it.
    """
    if not stream:
        return [], False
    first = stream[0][0]
    if after + 1 < first and not (after == 0 and first <= 1):
        frames = [e for e in stream if e[1] == 0]
        return (frames[-1:] if frames else []), True
    return [e for e in stream if e[0] > after], False


_LEASE_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_LEASE_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

VIEWER_TTL = 30.0  # seconds a viewer counts as present after its last heartbeat


class RedisTransport(Transport):
    """Redis: a stream per run (replay buffer), a list (controls), keys (leases)."""

    def __init__(self, url: str, replay: int, prefix: str = "sl") -> None:
        import redis

        self.url = url
        self.replay_size = replay
        self.prefix = prefix
        # Every driver thread of a worker may talk to Redis at once: a blocking pool
        # as large as the thread pool waits for a free connection instead of failing.
        threads = settings.SCALELAB["WORKER_THREADS"]
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=threads + 50,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=15,
        )
        self.sync = redis.Redis(connection_pool=pool)
        self._renew = self.sync.register_script(_LEASE_RENEW)
        self._release = self.sync.register_script(_LEASE_RELEASE)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def key(self, run_id: str, part: str) -> str:
        return f"{self.prefix}:run:{run_id}:{part}"

    def aclient(self):
        """Return this event loop's asyncio Redis client (one pool per loop)."""
        import redis.asyncio

        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = redis.asyncio.Redis.from_url(
                self.url,
                max_connections=2000,
                socket_connect_timeout=2,
                health_check_interval=15,
            )
            self._async[loop] = client
        return client

    def publish(self, run_id: str, seq: int, sub: int, text: str) -> bool:
        import redis

        key = self.key(run_id, "frames")
        try:
            pipe = self.sync.pipeline(transaction=False)
            pipe.xadd(
                key,
                {"m": text},
                id=f"{seq}-{sub}",
                maxlen=self.replay_size,
                approximate=True,
            )
            if (
                sub or seq % 10 == 1
            ):  # keep the stream alive with the run, not every frame
                pipe.expire(key, 3600)
            pipe.execute()
        except redis.ResponseError as exc:
            if "equal or smaller" in str(exc):
                return False
            raise
        return True

    def last_id(self, run_id: str) -> tuple[int, int]:
        entries = self.sync.xrevrange(self.key(run_id, "frames"), count=1)
        return _parse_id(entries[0][0]) if entries else (0, 0)

    def push_control(self, run_id: str, message: dict[str, Any]) -> None:
        key = self.key(run_id, "ctl")
        self.sync.rpush(key, json.dumps(message))
        self.sync.expire(key, 3600)

    def pop_controls(self, run_id: str) -> list[dict[str, Any]]:
        raw = self.sync.lpop(self.key(run_id, "ctl"), 100)
        return [json.loads(item) for item in raw or ()]

    def acquire(self, run_id: str, token: str, ttl: float) -> bool:
        return bool(
            self.sync.set(self.key(run_id, "lease"), token, nx=True, px=int(ttl * 1000))
        )

    def renew(self, run_id: str, token: str, ttl: float) -> bool:
        return bool(
            self._renew(keys=[self.key(run_id, "lease")], args=[token, int(ttl * 1000)])
        )

    def release(self, run_id: str, token: str) -> None:
        self._release(keys=[self.key(run_id, "lease")], args=[token])

    def leased(self, run_ids: list[str]) -> dict[str, bool]:
        if not run_ids:
            return {}
        pipe = self.sync.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.exists(self.key(run_id, "lease"))
        return {r: bool(v) for r, v in zip(run_ids, pipe.execute())}

    def claim_dispatch(self, run_id: str, ttl: float) -> bool:
        return bool(
            self.sync.set(
                self.key(run_id, "dispatch"), "1", nx=True, px=int(ttl * 1000)
            )
        )

    def viewers(self, run_id: str) -> int:
        key = self.key(run_id, "viewers")
        pipe = self.sync.pipeline(transaction=False)
        pipe.zremrangebyscore(key, "-inf", time.time() - VIEWER_TTL)
        pipe.zcard(key)
        return int(pipe.execute()[1])

    async def apush_control(self, run_id: str, message: dict[str, Any]) -> None:
        client = self.aclient()
        key = self.key(run_id, "ctl")
        async with client.pipeline(transaction=False) as pipe:
            pipe.rpush(key, json.dumps(message))
            pipe.expire(key, 3600)
            await pipe.execute()

    async def aviewer(self, run_id: str, viewer: str, present: bool) -> None:
        client = self.aclient()
        key = self.key(run_id, "viewers")
        if present:
            async with client.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {viewer: time.time()})
                pipe.expire(key, 3600)
                await pipe.execute()
        else:
            await client.zrem(key, viewer)

    async def aviewer_count(self, run_id: str) -> int:
        client = self.aclient()
        return int(
            await client.zcount(
                self.key(run_id, "viewers"), time.time() - VIEWER_TTL, "+inf"
            )
        )

    async def areplay(self, run_id: str, after: int) -> tuple[list[Entry], bool]:
        client = self.aclient()
        key = self.key(run_id, "frames")
        first = await client.xrange(key, count=1)
        if not first:
            return [], False
        first_seq = _parse_id(first[0][0])[0]
        if after + 1 < first_seq and not (after == 0 and first_seq <= 1):
            for raw_id, fields in await client.xrevrange(key, count=20):
                seq, sub = _parse_id(raw_id)
                if sub == 0:
                    return [(seq, sub, fields[b"m"].decode())], True
            return [], True
        raw = await client.xrange(key, min=f"{after + 1}-0")
        return [(*_parse_id(i), f[b"m"].decode()) for i, f in raw], False


_transport: Transport | None = None
_transport_lock = threading.Lock()


def get_transport() -> Transport:
    """Return this process's transport, chosen by settings (REDIS_URL or not)."""
    global _transport
    with _transport_lock:
        if _transport is None:
            replay = settings.SCALELAB["REPLAY_FRAMES"]
            if settings.REDIS_URL:
                _transport = RedisTransport(settings.REDIS_URL, replay)
            else:
                _transport = MemoryTransport(replay)
        return _transport


def set_transport(transport: Transport | None) -> None:
    """Replace the process's transport (tests and the embedded server)."""
    global _transport
    with _transport_lock:
        _transport = transport
