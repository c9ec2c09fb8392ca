"""A stopping core hands its conversations over: each closes at its next pause with 1012 (service
restart), the client reconnects with its session id to the instance that took over, and the server
waits for them (bounded) before it closes what is left."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

RECONNECT_REASON = "the core is restarting: reconnect with the same session_id"


@dataclass
class Drain:
    started: asyncio.Event = field(default_factory=asyncio.Event)
    conversations: int = 0  # WebSocket conversations open now

    async def settled(self, timeout: float) -> None:
        """Until every conversation has handed over, or ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.conversations and loop.time() < deadline:
            await asyncio.sleep(0.02)
