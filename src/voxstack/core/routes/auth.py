"""``POST /v1/auth/ws-token``: a short-lived token for opening the WebSocket where headers cannot be set."""

from __future__ import annotations

from fastapi import APIRouter, Request

from voxstack.core.auth import OWNER
from voxstack.core.errors import EDGE_ERRORS

router = APIRouter(tags=["auth"], responses=EDGE_ERRORS)


@router.post("/v1/auth/ws-token")
async def ws_token(request: Request) -> dict[str, object]:
    """A token for `WS /v1/stream?token=...` (browsers cannot send an Authorization header there).

    Needs an API key itself, like every route; valid for `ws_token_seconds`.
    """
    token, expires = request.app.state.api_keys.token(getattr(request.state, OWNER, ""))
    return {"token": token, "expires_at": expires}
