"""OpenAI's error shape, ``{"error": {"message", "type", "param", "code"}}``, for the OpenAI-compatible routes.

The routes use ``OpenAIRoute``, which turns voxstack's typed errors, validation
failures and HTTP errors raised inside them into that shape (the SDK maps the
status to its typed exceptions: 400 BadRequestError, 404 NotFoundError, ...).
Refusals made before a route runs (keys, limits, origins) keep voxstack's own
shape, which has ``error.message`` too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from voxstack.codes import OpenAICode
from voxstack.core.errors import RETRY_AFTER, caller_message, error_body, validation_message
from voxstack.core.uploads import ClientGone
from voxstack.errors import VoxError
from voxstack.logs import request_id_var

logger = logging.getLogger(__name__)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}


def openai_error(status: int, message: str, *, code: str | None = None, param: str | None = None) -> JSONResponse:
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    headers = {"X-Request-Id": request_id_var.get() or ""}
    if status in RETRY_AFTER:
        headers["Retry-After"] = RETRY_AFTER[status]
    return JSONResponse(body, status_code=status, headers=headers)


def stream_error(exc: VoxError, *, detail: bool) -> str:
    """A failure after a stream's 200 went out: the server-sent event that says so, in OpenAI's shape."""
    message = caller_message(exc, detail=detail)
    error = {"message": message, "type": "server_error", "param": None, "code": exc.reason.lower()}
    return f"data: {json.dumps({'error': error})}\n\n"


class NotFound(VoxError):
    """An unknown model (or other named thing) on an OpenAI route."""

    http_status = 404
    default_reason = "model_not_found"


class OpenAIRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def shaped(request: Request) -> Response:
            try:
                return await handler(request)
            except ClientGone:
                raise
            except VoxError as exc:
                if exc.http_status >= 500:
                    logger.warning("%s %s: %s", request.method, request.url.path, exc)
                # The same message voxstack's own routes give (in prod, no backend internals).
                body = error_body(exc, detail=request.app.state.settings.error_detail)
                return openai_error(exc.http_status, body["error"]["message"], code=exc.reason.lower())
            except RequestValidationError as exc:
                return openai_error(400, validation_message(exc), code=OpenAICode.INVALID_REQUEST, param=_param(exc))
            except HTTPException as exc:
                return openai_error(exc.status_code, str(exc.detail))

        return shaped


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str | None = None
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """OpenAI's error shape (refusals before the route, in voxstack's shape, fit it too: both have a message)."""

    error: OpenAIErrorDetail


#: The error statuses every OpenAI-compatible route may answer, for the OpenAPI schema.
OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorBody, "description": description}
    for status, description in {
        400: "The request is malformed.",
        401: "A valid API key is required.",
        403: "The request's origin is not allowed.",
        404: "Unknown model.",
        408: "The request body stopped arriving.",
        413: "The body or text is over its limit.",
        429: "Too many requests, or the engine's queue is full: see Retry-After.",
        500: "An unexpected error.",
        502: "A backend service failed.",
        503: "A backend service is unavailable: see Retry-After.",
        504: "A backend service did not answer in time.",
    }.items()
}


def _param(exc: RequestValidationError) -> str | None:
    errors: list[dict[str, Any]] = list(exc.errors())
    if not errors:
        return None
    loc = [str(p) for p in errors[0].get("loc", ()) if p not in ("body", "query", "header", "path")]
    return ".".join(loc) or None
