"""What one API key may take of a core: conversations, typed turns and llm calls.

With keys configured every caller is a key, and no key may take what the others need: a key may
hold ``key_conversations`` WebSocket conversations, type ``key_text_turns_per_minute`` turns (in
bursts of ten seconds' worth), and have ``key_llm_calls`` llm calls open at once. Past a limit a
request is refused at once, with a code that names the limit; the key's other work goes on.
Without keys there is no one to be fair between (every caller behind a proxy has one address), so
these limits apply to keys only; ``max_conversations`` and the llm's capacity bound the whole core.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from voxstack.codes import ErrorCode
from voxstack.config import CoreSettings
from voxstack.errors import Busy

#: The key of the call being handled (its id, safe to log); None without keys. Set by auth.RequireKey.
owner_var: ContextVar[str | None] = ContextVar("voxstack_owner", default=None)


@dataclass
class Bucket:
    tokens: float
    updated: float


class KeyShares:
    def __init__(self, core: CoreSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.conversations_limit = core.key_conversations
        self.turn_rate = core.key_text_turns_per_minute / 60
        self.turn_burst = max(1.0, self.turn_rate * 10)
        self.llm_limit = core.key_llm_calls
        self.clock = clock
        self.conversations: Counter[str] = Counter()
        self.llm_calls: Counter[str] = Counter()
        self.turns: dict[str, Bucket] = {}  # one per key that typed: as bounded as the keys

    def conversation_refusal(self, owner: str | None) -> str | None:
        """Why ``owner`` may not open another conversation now, or None."""
        if owner is None or not self.conversations_limit or self.conversations[owner] < self.conversations_limit:
            return None
        return f"this key has {self.conversations[owner]} conversations open, its limit; close one first"

    def conversation(self, owner: str | None) -> contextlib.AbstractContextManager[None]:
        """Counts an open conversation of ``owner`` while the block runs."""
        return counted(self.conversations, owner)

    def text_turn_wait(self, owner: str | None) -> float:
        """0 when ``owner`` may type a turn now (the turn is counted), else the seconds until it may."""
        if owner is None or self.turn_rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self.turns.setdefault(owner, Bucket(self.turn_burst, now))
        bucket.tokens = min(self.turn_burst, bucket.tokens + (now - bucket.updated) * self.turn_rate)
        bucket.updated = now
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / self.turn_rate
        bucket.tokens -= 1
        return 0.0

    def text_turn_refusal(self, owner: str | None) -> tuple[str, int] | None:
        """Why ``owner`` may not type a turn now and in how many seconds it may; None when it may (counted)."""
        wait = self.text_turn_wait(owner)
        if not wait:
            return None
        seconds = math.ceil(wait)
        return f"this key types at most {self.turn_rate * 60:g} turns a minute; retry in {seconds} s", seconds

    @contextlib.contextmanager
    def llm_call(self) -> Iterator[None]:
        """Counts an llm call of the current key while the block runs; Busy (429 KEY_LLM_BUSY) at its limit."""
        owner = owner_var.get()
        if owner is None or not self.llm_limit:
            yield
            return
        if self.llm_calls[owner] >= self.llm_limit:
            raise Busy(
                f"this key has {self.llm_calls[owner]} llm calls open, its limit; wait for one to finish",
                reason=ErrorCode.KEY_LLM_BUSY,
            )
        with counted(self.llm_calls, owner):
            yield


@contextlib.contextmanager
def counted(counts: Counter[str], owner: str | None) -> Iterator[None]:
    """``owner`` counted once more in ``counts`` while the block runs (a key that holds nothing leaves it)."""
    if owner is None:
        yield
        return
    counts[owner] += 1
    try:
        yield
    finally:
        counts[owner] -= 1
        if not counts[owner]:
            del counts[owner]
