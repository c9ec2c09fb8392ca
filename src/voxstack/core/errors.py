"""The one JSON shape of every error the core sends, and the handlers that make it.

``{"error": {"code", "message", "request_id", ["stage"]}}`` for typed errors,
validation failures, unknown routes and methods, and unexpected exceptions
alike. Messages name the field at fault but never echo what the caller sent
(it may be huge or not serialisable, as NaN is not). A 429 or 503 says when to
retry. In prod, a failed backend call does not show its address or gRPC details.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from voxstack.codes import ErrorCode
from voxstack.core.clients import StageError
from voxstack.core.uploads import ClientGone
from voxstack.errors import VoxError
from voxstack.logs import request_id_var

logger = logging.getLogger(__name__)

# Seconds a refused caller should wait before trying again.
RETRY_AFTER = {429: "1", 503: "2"}
_HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.BODY_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable reason, e.g. TEXT_TOO_LONG (docs/API.md lists them).")
    message: str = Field(description="What went wrong, for a person.")
    request_id: str = Field(description="The request's id, also in the X-Request-Id header and the logs.")
    stage: str | None = Field(None, description="The backend service that failed (asr, llm or tts), if one did.")


class ErrorBody(BaseModel):
    """The one shape of every error."""

    error: ErrorDetail


_MEANINGS = {
    400: "The request is malformed; the message names the field.",
    401: "A valid API key is required.",
    403: "The request's origin is not allowed.",
    408: "The request body stopped arriving.",
    413: "The body, text or audio is over its limit.",
    415: "The audio's content type is not supported.",
    429: "Too many requests (this client's, or the llm's queue is full): see Retry-After.",
    500: "An unexpected error.",
    502: "A backend service failed.",
    503: "A backend service is unavailable or not ready: see Retry-After.",
    504: "A backend service did not answer in time.",
}


def documented_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all in the one shape."""
    return {status: {"model": ErrorBody, "description": _MEANINGS[status]} for status in statuses}


#: What any route may answer before its own code runs (bad input, keys, origins, limits, timeouts).
EDGE_ERRORS = documented_errors(400, 401, 403, 408, 413, 429, 500)
#: What a route that calls the model services may answer besides.
BACKEND_ERRORS = documented_errors(502, 503, 504)


def caller_message(exc: VoxError, *, detail: bool) -> str:
    """What the caller is told: everything with ``detail`` (dev); else, for a failed stage, its name and
    what became of it, with the backend's own words only when they are about the request."""
    return exc.message if detail or not isinstance(exc, StageError) else exc.public_message


def error_body(exc: VoxError, *, detail: bool = True) -> dict[str, Any]:
    message = caller_message(exc, detail=detail)
    error: dict[str, Any] = {"code": exc.reason, "message": message, "request_id": request_id_var.get()}
    if isinstance(exc, StageError):
        error["stage"] = exc.stage
    return {"error": error}


def error_response(status: int, body: dict[str, Any], retry_after: int | None = None) -> JSONResponse:
    """The error ``body`` with its request id; a 429 or 503 says when to retry (``retry_after`` s, or the default)."""
    body["error"].setdefault("request_id", request_id_var.get())
    wait = str(retry_after) if retry_after is not None else RETRY_AFTER.get(status)
    headers = {"Retry-After": wait} if wait is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p)[:64] for p in loc if p not in ("body", "query", "header", "path")]
    return ".".join(parts) or "body"


def validation_message(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        if error.get("type") == "json_invalid":
            problems.append("the body is not valid JSON")
            continue
        problems.append(f"{_field(tuple(error.get('loc', ())))}: {str(error.get('msg', 'invalid'))[:200]}")
    return "; ".join(problems) or "the request is not valid"


def unexpected_response(exc: Exception, *, detail: bool) -> JSONResponse:
    """A 500 for an exception nobody expected: its type and text in dev, nothing of it in prod."""
    message = f"{type(exc).__name__}: {exc}"[:500] if detail else "internal error"
    return error_response(500, {"error": {"code": ErrorCode.INTERNAL, "message": message}})


def install(app: FastAPI, *, detail: bool) -> None:
    """Route every error through the one shape; ``detail`` (dev) keeps backend details in messages."""

    async def vox_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, VoxError)
        if isinstance(exc, ClientGone):
            logger.info("%s %s: %s", request.method, request.url.path, exc)
            return Response(status_code=400)
        if exc.http_status >= 500:
            logger.warning("%s %s: %s", request.method, request.url.path, exc)
        response = error_response(exc.http_status, error_body(exc, detail=detail))
        if exc.http_status == 408:
            response.headers["Connection"] = "close"  # the rest of the body will not be read
        return response

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, {"error": {"code": ErrorCode.INVALID_REQUEST, "message": validation_message(exc)}})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
        response = error_response(exc.status_code, {"error": {"code": code, "message": message}})
        response.headers.update(exc.headers or {})
        return response

    app.add_exception_handler(VoxError, vox_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
