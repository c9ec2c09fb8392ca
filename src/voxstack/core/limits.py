"""Every request body within a limit: audio routes get ``max_upload_bytes``, every other route ``max_json_bytes``.

An ASGI middleware rather than a check in each route: a JSON body is read by
FastAPI before any route code runs, so a limit there comes too late. Bodies of
other routes are read here up to their limit (413 past it, without reading the
rest) and handed on; audio bodies stream through, counted, and the route's
reader refuses them past the limit. A body that stops arriving for
``idle_seconds`` is answered 408 (uvicorn has no such timeout: a client could
hold a request open forever).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxstack.codes import ErrorCode
from voxstack.core.errors import error_body, error_response
from voxstack.errors import TimedOut, TooLarge, VoxError

#: Routes whose body is audio, read in chunks by the route itself.
AUDIO_ROUTES = frozenset({"/v1/transcribe", "/v1/converse", "/v1/audio/transcriptions"})


def _too_large(size: str, limit: int, audio: bool) -> TooLarge:
    reason = ErrorCode.UPLOAD_TOO_LARGE if audio else ErrorCode.BODY_TOO_LARGE
    return TooLarge(f"the request body is {size}; the limit is {limit} bytes", reason=reason)


def _stalled(seconds: float) -> TimedOut:
    return TimedOut(f"the request body stopped arriving for {seconds:g} s", reason=ErrorCode.BODY_TIMEOUT)


async def _refuse(scope: Scope, receive: Receive, send: Send, error: VoxError) -> None:
    response = error_response(error.http_status, error_body(error))
    response.headers["Connection"] = "close"  # the rest of the body is not read
    await response(scope, receive, send)


def _patient(receive: Receive, seconds: float) -> Receive:
    """``receive`` that raises TimedOut when the next part of the body takes longer than ``seconds``.

    Once the body is complete, waiting is what the caller does (for a disconnect, while a reply streams).
    """
    complete = False

    async def patient() -> Message:
        nonlocal complete
        if complete:
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), seconds)
        except asyncio.TimeoutError:
            raise _stalled(seconds) from None
        complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return patient


class BodyLimit:
    def __init__(self, app: ASGIApp, *, audio_limit: int, other_limit: int, idle_seconds: float) -> None:
        self.app = app
        self.audio_limit = audio_limit
        self.other_limit = other_limit
        self.idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        audio = scope["path"] in AUDIO_ROUTES
        limit = self.audio_limit if audio else self.other_limit
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, _too_large(f"{int(declared)} bytes", limit, audio))
            return
        if audio:
            await self.app(scope, _counted(_patient(receive, self.idle_seconds), limit), send)
            return
        chunks: list[bytes] = []
        size = 0
        patient = _patient(receive, self.idle_seconds)
        while True:
            try:
                message = await patient()
            except TimedOut as exc:
                await _refuse(scope, receive, send, exc)
                return
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)  # the client went away: let the app see it
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(scope, receive, send, _too_large(f"over {limit} bytes", limit, audio=False))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(
            scope, _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive), send
        )


def _counted(receive: Receive, limit: int) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise _too_large(f"over {limit} bytes", limit, audio=True)
        return message

    return counted


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()  # after the body: a disconnect, when it comes
        return {"type": "http.disconnect"}

    return replay
