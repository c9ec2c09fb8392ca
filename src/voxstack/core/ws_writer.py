"""What a conversation's WebSocket sends goes through one writer: a message at a time, and a client that has
stopped reading is dropped rather than waited for (``/v1/stream`` and ``/v1/realtime`` alike)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import WebSocketDisconnect
from prometheus_client import Counter
from starlette.websockets import WebSocketDisconnected

from voxstack.codes import CloseCode, ErrorCode

logger = logging.getLogger(__name__)


class WsWriter:
    def __init__(self, timeout: float, slow_clients: Counter, gone: asyncio.Event) -> None:
        self.timeout = timeout  # core.ws_send_timeout
        self.slow_clients = slow_clients
        self.gone = gone  # set when the client is dropped or the socket found closed
        self._lock = asyncio.Lock()  # a message and the frame that goes with it stay together

    async def write(self, send: Callable[[], Awaitable[None]]) -> None:
        """Run ``send`` (the socket's sends of one message) alone; a client that read nothing for ``timeout``
        is dropped (WebSocketDisconnect): the turn writing to it must not hold the llm or the tts."""
        async with self._lock:
            try:
                await asyncio.wait_for(send(), self.timeout)
            except asyncio.TimeoutError:
                logger.warning("the client read nothing for %g s: dropping the conversation", self.timeout)
                self.slow_clients.inc()
                self.gone.set()
                raise WebSocketDisconnect(CloseCode.POLICY_VIOLATION, ErrorCode.SLOW_CLIENT) from None
            except (WebSocketDisconnected, RuntimeError):  # closed meanwhile (a refusal, the client): nobody left
                self.gone.set()
                raise WebSocketDisconnect(CloseCode.NORMAL_CLOSURE, "CLOSED") from None
