"""A stopping core hands its conversations over: each closes at its next pause with 1012 (service
restart), the client reconnects with its session id to the instance that took over, and the server
waits for them (bounded) before it closes what is left. Both waits are woken by the changes they wait
on, not by polling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

RECONNECT_REASON = "the core is restarting: reconnect with the same session_id"


class Quiet:
    """Waits until ``idle()`` holds; whoever changes what ``idle`` reads calls ``changed()`` (usable as a
    task's done callback)."""

    def __init__(self, idle: Callable[[], bool]) -> None:
        self._idle = idle
        self._changed = asyncio.Event()

    def changed(self, *_: object) -> None:
        self._changed.set()

    async def wait(self) -> None:
        while not self._idle():
            self._changed.clear()
            await self._changed.wait()


@dataclass
class Drain:
    started: asyncio.Event = field(default_factory=asyncio.Event)
    _open: int = 0
    _none_open: Quiet = field(init=False)

    def __post_init__(self) -> None:
        self._none_open = Quiet(lambda: self._open == 0)

    @property
    def conversations(self) -> int:
        """WebSocket conversations open now."""
        return self._open

    @contextlib.contextmanager
    def conversation(self) -> Iterator[None]:
        """Counts a conversation as open for the block."""
        self._open += 1
        try:
            yield
        finally:
            self._open -= 1
            self._none_open.changed()

    async def settled(self, timeout: float) -> None:
        """Until every conversation has handed over, or ``timeout``."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._none_open.wait(), timeout)
