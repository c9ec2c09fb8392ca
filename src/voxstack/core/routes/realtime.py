"""``WS /v1/realtime``: OpenAI's Realtime API (``voxstack.core.realtime``; docs/API.md says what of it)."""

from __future__ import annotations

import contextlib
import json
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket

from voxstack.codes import CloseCode
from voxstack.core.deps import BackendsDep, PipelineDep, SettingsDep, session_key
from voxstack.core.realtime.connection import RealtimeConnection
from voxstack.core.realtime.items import Items
from voxstack.core.routes.conversation import OVERLOADED_RETRY_SECONDS, admitted
from voxstack.core.sessions import check_session_id
from voxstack.errors import VoxError

router = APIRouter(tags=["realtime"])


@router.websocket("/v1/realtime")
async def realtime(
    ws: WebSocket,
    pipeline: PipelineDep,
    backends: BackendsDep,
    settings: SettingsDep,
    model: Annotated[str, Query(max_length=128)] = "voxstack",
    session_id: Annotated[str | None, Query(max_length=64, description="Resume this session's conversation.")] = None,
) -> None:
    """A Realtime API session; ``?session_id=`` (ours) resumes an earlier session's conversation."""
    await ws.accept()
    try:
        if session_id is not None:
            check_session_id(session_id)
    except VoxError as exc:
        await refuse_realtime(ws, exc.reason, str(exc), CloseCode.POLICY_VIOLATION)
        return
    session_id = session_id or f"sess_{secrets.token_hex(10)}"
    async with admitted(ws, pipeline, settings, refuse_over_limit) as admission:
        if admission:
            key = session_key(ws, session_id) or session_id
            items = await Items.load(pipeline.sessions, key)
            connection = RealtimeConnection(
                ws,
                pipeline,
                backends,
                settings.core,
                session_id=session_id,
                items=items,
                model=model,
                draining=ws.app.state.drain.started,
            )
            await connection.run()


async def refuse_realtime(ws: WebSocket, code: str, message: str, close_code: int) -> None:
    """An ``error`` event in the Realtime API's shape, then the close."""
    error = {"type": "invalid_request_error", "code": code.lower(), "message": message, "param": None}
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"type": "error", "event_id": f"event_{secrets.token_hex(8)}", "error": error}))
        await ws.close(close_code, code.lower())


async def refuse_over_limit(ws: WebSocket, code: str, message: str) -> None:
    await refuse_realtime(ws, code, f"{message} (retry in {OVERLOADED_RETRY_SECONDS} s)", CloseCode.TRY_AGAIN_LATER)
