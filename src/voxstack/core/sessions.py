"""Conversation history per session: in memory, bounded in turns and size, expiring when idle."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from voxstack.errors import InvalidInput

SESSION_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_session_id(session_id: str) -> str:
    if not SESSION_ID.fullmatch(session_id):
        raise InvalidInput(
            f"session_id {session_id[:80]!r} is not valid: use 1 to 64 letters, digits, '.', '_' or '-'",
            reason="BAD_SESSION_ID",
        )
    return session_id


@dataclass
class Session:
    turns: list[tuple[str, str]] = field(default_factory=list)  # (user, assistant)
    last_used: float = 0.0


class SessionStore:
    def __init__(
        self,
        max_turns: int,
        max_chars: int,
        idle_seconds: float,
        max_sessions: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_turns = max_turns
        self.max_chars = max_chars
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self) -> None:
        now = self.clock()
        while self._sessions:
            key, oldest = next(iter(self._sessions.items()))
            if now - oldest.last_used <= self.idle_seconds and len(self._sessions) <= self.max_sessions:
                break
            del self._sessions[key]

    def history(self, session_id: str) -> list[dict[str, str]]:
        """The session's earlier turns as chat messages (empty for a new or expired session)."""
        self._expire()
        session = self._sessions.get(session_id)
        if session is None:
            return []
        messages = []
        for user, assistant in session.turns:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        return messages

    def append(self, session_id: str, user: str, assistant: str) -> None:
        session = self._sessions.pop(session_id, None) or Session()
        session.turns.append((user, assistant))
        session.last_used = self.clock()
        del session.turns[: max(0, len(session.turns) - self.max_turns)]
        while session.turns and sum(len(u) + len(a) for u, a in session.turns) > self.max_chars:
            session.turns.pop(0)
        self._sessions[session_id] = session  # most recent last
        self._expire()
