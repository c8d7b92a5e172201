"""Distributed mode: a stream per run, an inbox per run, leases, and one live feed.

One scheduler tick is one call of ``_EXCHANGE``, a Lua script: it appends the tick's
frames and statuses to their runs' streams (the replay buffers), publishes the ones
that were new on the feed channel as one message, pops the inboxes of the runs that
ticked, renews or gives up leases and counts viewers. Redis runs a script as one
command, so a reader of the feed always finds an entry in its stream already.
The script builds key names from the prefix: a single Redis server, not a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio

from .base import (
    RETIRED_TTL,
    STREAM_TTL,
    TRANSIENT_ERRORS,
    VIEWER_TTL,
    Entry,
    Exchange,
    Id,
    OnEntries,
    Published,
    Reply,
    parse_id,
)

log = logging.getLogger(__name__)

_EXCHANGE = """
local p = ARGV[1]
local now = tonumber(ARGV[2])
local vttl = tonumber(ARGV[3])
local token = ARGV[4]
local lease = ARGV[5]
local maxlen = ARGV[6]
local keep = ARGV[7]
local retired = ARGV[8]
local counts = {}
for j = 1, 6 do counts[j] = tonumber(ARGV[8 + j]) end
local i = 15
local feed = {}
for _ = 1, counts[1] do
  -- "<run> <previous id> <id> <text>": the feed's line, as it is
  local line = ARGV[i]
  i = i + 1
  local a = string.find(line, ' ', 1, true)
  local b = string.find(line, ' ', a + 1, true)
  local c = string.find(line, ' ', b + 1, true)
  local key = p .. ':run:' .. string.sub(line, 1, a - 1) .. ':frames'
  local id = string.sub(line, b + 1, c - 1)
  local ok = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, id, 'm', string.sub(line, c + 1))
  if type(ok) ~= 'table' then
    redis.call('EXPIRE', key, keep)
    feed[#feed + 1] = line
  end
end
if #feed > 0 then
  redis.call('PUBLISH', p .. ':feed', table.concat(feed, '\\n'))
end
local ctl = {}
for _ = 1, counts[2] do
  ctl[#ctl + 1] = redis.call('LPOP', p .. ':run:' .. ARGV[i] .. ':ctl', 100) or {}
  i = i + 1
end
local renewed = {}
for _ = 1, counts[3] do
  local key = p .. ':run:' .. ARGV[i] .. ':lease'
  local v = redis.call('GET', key)
  if v == token then
    redis.call('PEXPIRE', key, lease)
    renewed[#renewed + 1] = 1
  elseif not v then
    redis.call('SET', key, token, 'PX', lease)
    renewed[#renewed + 1] = 1
  else
    renewed[#renewed + 1] = 0
  end
  i = i + 1
end
local viewers = {}
for _ = 1, counts[4] do
  local key = p .. ':run:' .. ARGV[i] .. ':viewers'
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - vttl)
  viewers[#viewers + 1] = redis.call('ZCARD', key)
  i = i + 1
end
for _ = 1, counts[5] do
  local key = p .. ':run:' .. ARGV[i] .. ':lease'
  if redis.call('GET', key) == token then redis.call('DEL', key) end
  i = i + 1
end
for _ = 1, counts[6] do
  local base = p .. ':run:' .. ARGV[i]
  for _, part in ipairs({':frames', ':ctl', ':viewers', ':dispatch'}) do
    redis.call('EXPIRE', base .. part, retired)
  end
  i = i + 1
end
return {#feed, ctl, renewed, viewers}
"""

_LEASE_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class _Feed:
    """A task in one event loop reading the feed channel, resubscribing after outages."""

    def __init__(self, transport: RedisTransport, loop, on_entries, on_resync) -> None:
        self.transport = transport
        self.on_entries = on_entries
        self.on_resync = on_resync
        self.task = loop.create_task(self._read())

    def close(self) -> None:
        self.task.cancel()

    async def _read(self) -> None:
        channel = f"{self.transport.prefix}:feed"
        backoff = 0.2
        interrupted = False
        while True:
            pubsub = self.transport.aclient().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                if interrupted:
                    self.on_resync()
                backoff = 0.2
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message["type"] == "message":
                        self.on_entries(_parse_feed(message["data"]))
            except TRANSIENT_ERRORS as exc:
                log.warning("frame feed unavailable (%s); retrying", exc)
                interrupted = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


def _parse_feed(data: bytes) -> list[Published]:
    out: list[Published] = []
    for line in data.decode().split("\n"):
        run_id, prev, id_, text = line.split(" ", 3)
        out.append((run_id, parse_id(prev), parse_id(id_), text))
    return out


class RedisTransport:
    """Redis: streams (replay), lists (controls), keys (leases), a channel (feed)."""

    def __init__(self, url: str, replay: int, prefix: str = "sl") -> None:
        self.url = url
        self.replay_size = replay
        self.prefix = prefix
        # A worker's scheduler, store, supervisor and task threads share this pool;
        # blocking, so a burst waits for a free connection instead of failing.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=50,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=15,
        )
        self.sync = redis.Redis(connection_pool=pool)
        self._exchange = self.sync.register_script(_EXCHANGE)
        self._release = self.sync.register_script(_LEASE_RELEASE)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def key(self, run_id: str, part: str) -> str:
        return f"{self.prefix}:run:{run_id}:{part}"

    def aclient(self):
        """Return this event loop's asyncio Redis client (one pool per loop)."""
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

    # worker side

    def exchange(self, batch: Exchange) -> Reply:
        args: list[Any] = [
            self.prefix,
            repr(time.time()),
            repr(VIEWER_TTL),
            batch.token,
            int(batch.lease_s * 1000),
            self.replay_size,
            STREAM_TTL,
            RETIRED_TTL,
            len(batch.entries),
            len(batch.controls),
            len(batch.renew),
            len(batch.viewers),
            len(batch.release),
            len(batch.retire),
        ]
        args += [
            f"{run_id} {prev[0]}-{prev[1]} {id_[0]}-{id_[1]} {text}"
            for run_id, prev, id_, text in batch.entries
        ]
        args += batch.controls
        args += batch.renew
        args += batch.viewers
        args += batch.release
        args += batch.retire
        published, controls, renewed, viewers = self._exchange(args=args)
        reply = Reply(published=int(published))
        for run_id, raw in zip(batch.controls, controls):
            if raw:
                reply.controls[run_id] = [json.loads(item) for item in raw]
        reply.renewed = {r: bool(v) for r, v in zip(batch.renew, renewed)}
        reply.viewers = {r: int(v) for r, v in zip(batch.viewers, viewers)}
        return reply

    def last_id(self, run_id: str) -> Id:
        entries = self.sync.xrevrange(self.key(run_id, "frames"), count=1)
        return parse_id(entries[0][0]) if entries else (0, 0)

    def push_control(self, run_id: str, message: dict[str, Any]) -> None:
        key = self.key(run_id, "ctl")
        pipe = self.sync.pipeline(transaction=False)
        pipe.rpush(key, json.dumps(message))
        pipe.expire(key, STREAM_TTL)
        pipe.execute()

    def acquire(self, run_id: str, token: str, ttl: float) -> bool:
        return bool(
            self.sync.set(self.key(run_id, "lease"), token, nx=True, px=int(ttl * 1000))
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

    def watched(self, run_ids: list[str]) -> dict[str, bool]:
        if not run_ids:
            return {}
        since = time.time() - VIEWER_TTL
        pipe = self.sync.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.zcount(self.key(run_id, "viewers"), since, "+inf")
        return {r: bool(v) for r, v in zip(run_ids, pipe.execute())}

    def claim_dispatch(self, run_id: str, ttl: float) -> bool:
        return bool(
            self.sync.set(
                self.key(run_id, "dispatch"), "1", nx=True, px=int(ttl * 1000)
            )
        )

    def clear_dispatch(self, run_id: str) -> None:
        self.sync.delete(self.key(run_id, "dispatch"))

    # web side

    async def apush_control(self, run_id: str, message: dict[str, Any]) -> None:
        client = self.aclient()
        key = self.key(run_id, "ctl")
        async with client.pipeline(transaction=False) as pipe:
            pipe.rpush(key, json.dumps(message))
            pipe.expire(key, STREAM_TTL)
            await pipe.execute()

    async def aviewer(self, run_id: str, viewer: str, present: bool) -> None:
        client = self.aclient()
        key = self.key(run_id, "viewers")
        if present:
            async with client.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {viewer: time.time()})
                pipe.expire(key, STREAM_TTL)
                await pipe.execute()
        else:
            await client.zrem(key, viewer)

    async def arange(self, run_id: str, start: int) -> tuple[int | None, list[Entry]]:
        key = self.key(run_id, "frames")
        async with self.aclient().pipeline(transaction=False) as pipe:
            pipe.xrange(key, count=1)
            pipe.xrange(key, min=f"{start}-0")
            first, raw = await pipe.execute()
        if not first:
            return None, []
        return parse_id(first[0][0])[0], [
            (*parse_id(i), f[b"m"].decode()) for i, f in raw
        ]

    async def alatest_frame(self, run_id: str) -> Entry | None:
        raw = await self.aclient().xrevrange(self.key(run_id, "frames"), count=20)
        for raw_id, fields in raw:
            seq, sub = parse_id(raw_id)
            if sub == 0:
                return seq, sub, fields[b"m"].decode()
        return None

    def subscribe(
        self,
        loop: asyncio.AbstractEventLoop,
        on_entries: OnEntries,
        on_resync: Callable[[], None],
    ) -> _Feed:
        return _Feed(self, loop, on_entries, on_resync)
