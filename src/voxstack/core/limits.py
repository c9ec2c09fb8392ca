"""Every request body within a limit: audio routes get ``max_upload_bytes``, every other route ``max_json_bytes``.

An ASGI middleware rather than a check in each route: a JSON body is read by
FastAPI before any route code runs, so a limit there comes too late. Bodies of
other routes are read here up to their limit (413 past it, without reading the
rest) and handed on; audio bodies stream through, counted, and the route's
reader refuses them past the limit.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxstack.errors import TooLarge
from voxstack.logs import request_id_var

#: Routes whose body is audio, read in chunks by the route itself.
AUDIO_ROUTES = frozenset({"/v1/transcribe", "/v1/converse"})


def _too_large(size: str, limit: int, audio: bool) -> TooLarge:
    reason = "UPLOAD_TOO_LARGE" if audio else "BODY_TOO_LARGE"
    return TooLarge(f"the request body is {size}; the limit is {limit} bytes", reason=reason)


async def _refuse(send: Send, error: TooLarge) -> None:
    body = json.dumps(
        {"error": {"code": error.reason, "message": error.message, "request_id": request_id_var.get()}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, *, audio_limit: int, other_limit: int) -> None:
        self.app = app
        self.audio_limit = audio_limit
        self.other_limit = other_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        audio = scope["path"] in AUDIO_ROUTES
        limit = self.audio_limit if audio else self.other_limit
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, _too_large(f"{int(declared)} bytes", limit, audio))
            return
        if audio:
            await self.app(scope, _counted(receive, limit), send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)  # the client went away: let the app see it
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(send, _too_large(f"over {limit} bytes", limit, audio=False))
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
