"""The one JSON shape of an error the core sends: ``{"error": {"code", "message", "request_id", ["stage"]}}``."""

from __future__ import annotations

from typing import Any

from voxstack.core.clients import StageError
from voxstack.errors import VoxError
from voxstack.logs import request_id_var


def error_body(exc: VoxError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.reason, "message": exc.message, "request_id": request_id_var.get()}
    if isinstance(exc, StageError):
        error["stage"] = exc.stage
    return {"error": error}
