"""Sessions in Redis: shared by every core replica, bounded and expired by Redis itself.

A session is a list of JSON turns under ``{prefix}session:{id}`` (trimmed as
``Bounds.trim`` says and expiring after ``idle_seconds`` without a turn); a sorted set
``{prefix}sessions`` ranks them by last use, so that past ``max_sessions`` the
least recent go, whichever core appends.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from voxstack.codes import ErrorCode
from voxstack.core.sessions.base import Bounds, Item, as_messages, new_secret, trim_items
from voxstack.errors import NotReady


class RedisSessions:
    def __init__(
        self, url: str, bounds: Bounds, prefix: str = "voxstack:", clock: Callable[[], float] = time.time
    ) -> None:
        import redis.asyncio

        self.bounds = bounds
        self.prefix = prefix
        self.clock = clock
        self._redis: Any = redis.asyncio.from_url(url, decode_responses=True, socket_timeout=5)
        self._index = f"{prefix}sessions"
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    async def _call(self, operation: Callable[[], Any]) -> Any:
        import redis.exceptions

        try:
            return await operation()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise NotReady(
                f"the session store (redis) is unavailable: {exc}", reason=ErrorCode.SESSIONS_UNAVAILABLE
            ) from exc

    async def _expire(self) -> None:
        """Forget idle sessions, then the least recent beyond ``max_sessions``. Their lists also expire
        in Redis by themselves (EXPIRE), whether or not a core is running."""
        r, bounds = self._redis, self.bounds
        cutoff = self.clock() - bounds.idle_seconds
        gone = list(await r.zrangebyscore(self._index, "-inf", cutoff))
        extra = await r.zcard(self._index) - len(gone) - bounds.max_sessions
        if extra > 0:
            gone += await r.zrangebyscore(self._index, f"({cutoff}", "+inf", start=0, num=extra)
        if gone:
            async with r.pipeline(transaction=True) as p:
                p.zrem(self._index, *gone)
                p.delete(*(self._key(m) for m in gone))
                await p.execute()
        self._count = await r.zcard(self._index)

    async def history(self, session_id: str) -> list[dict[str, str]]:
        async def read() -> list[str]:
            await self._expire()
            return list(await self._redis.lrange(self._key(session_id), 0, -1))

        return as_messages([tuple(json.loads(t)) for t in await self._call(read)])

    async def append(self, session_id: str, user: str, assistant: str) -> None:
        bounds, key = self.bounds, self._key(session_id)

        async def write() -> None:
            if bounds.max_turns == 0:
                await self._redis.delete(key)
                return
            async with self._redis.pipeline(transaction=True) as p:
                p.rpush(key, json.dumps([user, assistant]))
                p.lrange(key, 0, -1)
                p.expire(key, max(1, math.ceil(bounds.idle_seconds)))
                p.zadd(self._index, {session_id: self.clock()})
                turns = (await p.execute())[1]
            kept = len(bounds.trim([tuple(json.loads(t)) for t in turns]))
            if kept < len(turns):  # over a bound: the oldest turns go (Bounds.trim says how many)
                await self._redis.ltrim(key, len(turns) - kept, -1)
            await self._expire()

        await self._call(write)

    async def items(self, session_id: str) -> list[Item]:
        body = await self._call(lambda: self._redis.get(f"{self.prefix}conversation:{session_id}"))
        return list(json.loads(body)) if body else []

    async def keep_items(self, session_id: str, items: Sequence[Item]) -> None:
        # One JSON value, expiring as a session's turns do (a Realtime session keeps no turns list).
        body = json.dumps(trim_items(self.bounds, items))
        seconds = max(1, math.ceil(self.bounds.idle_seconds))
        await self._call(lambda: self._redis.set(f"{self.prefix}conversation:{session_id}", body, ex=seconds))

    async def shared_secret(self, name: str) -> bytes:
        key = f"{self.prefix}secret:{name}"

        async def get_or_make() -> str:
            await self._redis.set(key, new_secret().hex(), nx=True)  # the first core's stays
            return str(await self._redis.get(key))

        return bytes.fromhex(await self._call(get_or_make))

    async def close(self) -> None:
        await self._redis.aclose()
