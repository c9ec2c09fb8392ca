"""What every session store shares: valid ids, the bounds on a history, the interface."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from voxstack.codes import ErrorCode
from voxstack.errors import InvalidInput

#: Bytes of a secret made by ``SessionStore.shared_secret``.
SECRET_BYTES = 32


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


SESSION_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

Turn = tuple[str, str]  # (user, assistant)


def check_session_id(session_id: str) -> str:
    if not SESSION_ID.fullmatch(session_id):
        raise InvalidInput(
            f"session_id {session_id[:80]!r} is not valid: use 1 to 64 letters, digits, '.', '_' or '-'",
            reason=ErrorCode.BAD_SESSION_ID,
        )
    return session_id


@dataclass(frozen=True)
class Bounds:
    """How much history a session keeps, how long an idle one lives, how many live at once."""

    max_turns: int
    max_chars: int
    idle_seconds: float
    max_sessions: int

    def trim(self, turns: Sequence[Turn]) -> list[Turn]:
        """The turns kept: all of them while within ``max_turns`` and ``max_chars``; past either, the
        oldest go until what is left fits in half of each (the newest stays if it fits alone).

        In steps, not one turn at a time: the llm caches the prompt it last evaluated, and a history
        that lost its oldest turn at every turn would change right after the system prompt each time,
        so the whole history would be evaluated again at every turn (measured: llm calls from 1.4 s to
        4-10 s over a 15-minute conversation). Trimmed in steps, the front stays put for half the bound.
        """
        if not self.max_turns:
            return []
        kept = list(turns)
        size = sum(len(u) + len(a) for u, a in kept)
        if len(kept) <= self.max_turns and size <= self.max_chars:
            return kept
        turns_goal, chars_goal = max(1, self.max_turns // 2), self.max_chars // 2
        while kept and (len(kept) > turns_goal or size > chars_goal):
            if len(kept) == 1 and size <= self.max_chars:
                break
            user, assistant = kept.pop(0)
            size -= len(user) + len(assistant)
        return kept


Item = dict[str, Any]  # one item of a Realtime conversation, as the Realtime API shapes it


def item_chars(item: Item) -> int:
    """The text an item holds, for the character bound."""
    parts = item.get("content") or []
    text = sum(len(str(p.get("text") or p.get("transcript") or "")) for p in parts if isinstance(p, dict))
    return text + len(str(item.get("arguments") or "")) + len(str(item.get("output") or ""))


def trim_items(bounds: Bounds, items: Sequence[Item]) -> list[Item]:
    """A conversation's items within the bounds: the oldest go while there are more than four items a turn
    (a question, a call, its result, the answer) or more than ``max_chars`` of text."""
    kept = list(items)
    size = sum(item_chars(i) for i in kept)
    while kept and (len(kept) > 4 * bounds.max_turns or size > bounds.max_chars):
        size -= item_chars(kept.pop(0))
    return kept


def as_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    messages = []
    for user, assistant in turns:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages


class SessionStore(Protocol):
    async def history(self, session_id: str) -> list[dict[str, str]]:
        """The session's earlier turns as chat messages (empty for a new or expired session)."""
        ...

    async def append(self, session_id: str, user: str, assistant: str) -> None:
        """A finished turn joins the session (the least recent turns and sessions give way)."""
        ...

    async def items(self, session_id: str) -> list[Item]:
        """A Realtime session's conversation items (empty for a new or expired session)."""
        ...

    async def keep_items(self, session_id: str, items: Sequence[Item]) -> None:
        """The Realtime session's conversation is now ``items`` (trimmed to the bounds)."""
        ...

    async def shared_secret(self, name: str) -> bytes:
        """A random secret shared by every core that uses this store, made by the first that asks."""
        ...

    def __len__(self) -> int:
        """Sessions kept, as of the last call (for the gauge: never blocks)."""
        ...

    async def close(self) -> None: ...
