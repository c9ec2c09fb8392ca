"""The outermost of the core's own middleware: a request id, one log line and the metrics of every
HTTP request, and what becomes of an exception before and after the response began.

Before the status went out, an unexpected exception is a 500 in the one error shape. After it, the
body cannot be completed and must not look complete: a streamed body ends without its last chunk,
so every HTTP client reports the response as cut (a WAV header of unknown length, or FLAC, would
otherwise pass for a whole file). Such cuts are counted.
"""

from __future__ import annotations

import logging
import time

from opentelemetry import trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxstack.config import Settings
from voxstack.core import errors
from voxstack.logs import request_id_var
from voxstack.metrics.catalog import CoreMetrics
from voxstack.rpc_status import REQUEST_ID_KEY, clean_request_id

logger = logging.getLogger(__name__)


class RequestLog:
    def __init__(self, app: ASGIApp, *, settings: Settings, metrics: CoreMetrics) -> None:
        self.app = app
        self.mode = settings.mode.value
        self.detail = settings.error_detail
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = clean_request_id(Headers(scope=scope).get(REQUEST_ID_KEY))
        token = request_id_var.set(rid)
        trace.get_current_span().set_attribute("voxstack.request_id", rid)
        started = time.perf_counter()
        status = 0
        method, path = scope["method"], scope["path"]

        async def send_stamped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_KEY] = rid
                headers["X-Voxstack-Mode"] = self.mode
                self._answered(scope, status, time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_stamped)
        except Exception as exc:
            if not status:
                logger.error("%s %s failed", method, path, exc_info=exc)
                await errors.unexpected_response(exc, detail=self.detail)(scope, receive, send_stamped)
            else:
                # Returning without the body's end: the server closes the connection mid-body.
                self.metrics.responses_cut.labels(route_of(scope)).inc()
                logger.error("%s %s %d: the response was cut: %s", method, path, status, cause(exc))
        finally:
            request_id_var.reset(token)

    def _answered(self, scope: Scope, status: int, seconds: float) -> None:
        route, method = route_of(scope), scope["method"]
        self.metrics.requests.labels(route, method, str(status)).inc()
        self.metrics.request_seconds.labels(route, method).observe(seconds)
        level = logging.DEBUG if scope["path"] == "/healthz" else logging.INFO
        logger.log(
            level,
            "%s %s %d %.1f ms",
            method,
            scope["path"],
            status,
            seconds * 1000,
            extra={"request_id": request_id_var.get(), "status": status},
        )


def route_of(scope: Scope) -> str:
    """The route's template (a bounded label), or ``other`` for unknown paths."""
    return str(getattr(scope.get("route"), "path", "other"))


def cause(exc: BaseException) -> str:
    """What went wrong, past the wrapper Starlette puts around an error whose handler came too late."""
    inner = exc.__cause__ or exc
    return f"{type(inner).__name__}: {inner}"
