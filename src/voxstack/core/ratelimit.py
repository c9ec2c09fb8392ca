"""Per-client request rate and concurrency: 429 with ``Retry-After`` beyond either.

A client is its API key when it presented one (``auth.caller``), else its
address. The rate is a token bucket (``rate_limit`` a second, bursts of
``rate_burst``); concurrency counts requests in flight, a WebSocket for as long
as it is open. State lives in the app (one per core process; replicas each keep
their own) and forgets the least recently seen clients beyond ``MAX_CLIENTS``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from voxstack.codes import CloseCode, ErrorCode
from voxstack.core.auth import OPEN_PATHS, caller
from voxstack.core.errors import error_response

logger = logging.getLogger(__name__)

MAX_CLIENTS = 10_000


@dataclass
class Client:
    tokens: float
    updated: float
    in_flight: int = 0


class RateLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        rate: float,
        burst: int,
        concurrency: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.rate = rate
        self.burst = burst
        self.concurrency = concurrency
        self.clock = clock
        self.clients: OrderedDict[str, Client] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0 or self.concurrency > 0

    def client(self, who: str) -> Client:
        client = self.clients.pop(who, None) or Client(tokens=float(self.burst), updated=self.clock())
        self.clients[who] = client  # most recent last
        while len(self.clients) > MAX_CLIENTS:
            oldest = next(iter(self.clients))
            if self.clients[oldest].in_flight:
                break  # never forget a client mid-request: its count must come back down
            del self.clients[oldest]
        return client

    def refusal(self, client: Client) -> tuple[str, str, int] | None:
        """(code, message, retry after) when the request must wait; None to admit it."""
        if self.rate > 0:
            now = self.clock()
            client.tokens = min(float(self.burst), client.tokens + (now - client.updated) * self.rate)
            client.updated = now
            if client.tokens < 1:
                wait = max(1, math.ceil((1 - client.tokens) / self.rate))
                return ErrorCode.RATE_LIMITED, f"too many requests: at most {self.rate:g} a second", wait
        if self.concurrency and client.in_flight >= self.concurrency:
            return ErrorCode.TOO_MANY_CONCURRENT, f"too many requests at once: at most {self.concurrency}", 1
        if self.rate > 0:
            client.tokens -= 1
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS or not self.enabled:
            await self.app(scope, receive, send)
            return
        who = caller(scope)
        client = self.client(who)
        refused = self.refusal(client)
        if refused is not None:
            code, message, wait = refused
            logger.info("refused %s %s for %s: %s", scope.get("method", "WS"), scope["path"], who, code)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": CloseCode.TRY_AGAIN_LATER})  # before accept: a 403
            else:
                body = {"error": {"code": code, "message": message}}
                await error_response(429, body, retry_after=wait)(scope, receive, send)
            return
        client.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            client.in_flight -= 1
