"""Sessions in this process's memory: gone when it stops."""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from voxstack.core.sessions.base import Bounds, Item, Turn, as_messages, new_secret, trim_items


@dataclass
class Session:
    turns: list[Turn] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)  # a Realtime session's conversation
    last_used: float = 0.0


class MemorySessions:
    def __init__(self, bounds: Bounds, clock: Callable[[], float] = time.monotonic) -> None:
        self.bounds = bounds
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._secrets: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self) -> None:
        now = self.clock()
        while self._sessions:
            key, oldest = next(iter(self._sessions.items()))
            if now - oldest.last_used <= self.bounds.idle_seconds and len(self._sessions) <= self.bounds.max_sessions:
                break
            del self._sessions[key]

    async def history(self, session_id: str) -> list[dict[str, str]]:
        self._expire()
        session = self._sessions.get(session_id)
        return as_messages(session.turns) if session else []

    async def append(self, session_id: str, user: str, assistant: str) -> None:
        session = self._sessions.pop(session_id, None) or Session()
        session.turns = self.bounds.trim([*session.turns, (user, assistant)])
        session.last_used = self.clock()
        self._sessions[session_id] = session  # most recent last
        self._expire()

    async def items(self, session_id: str) -> list[Item]:
        self._expire()
        session = self._sessions.get(session_id)
        return copy.deepcopy(session.items) if session else []

    async def keep_items(self, session_id: str, items: Sequence[Item]) -> None:
        session = self._sessions.pop(session_id, None) or Session()
        session.items = trim_items(self.bounds, copy.deepcopy(list(items)))
        session.last_used = self.clock()
        self._sessions[session_id] = session
        self._expire()

    async def shared_secret(self, name: str) -> bytes:
        return self._secrets.setdefault(name, new_secret())  # one process: shared with nobody else

    async def close(self) -> None:
        self._sessions.clear()
