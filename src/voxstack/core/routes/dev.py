"""The dev dashboard (dev mode only; 404 in prod): ``GET /dev``, ``GET /v1/dev/state``, ``GET /v1/dev/events``,
and the replayed conversations' reply audio.

Read-only: each service's state, pid, generation, health, reloads and last
error, from the supervisor's run state; the events stream (server-sent events)
sends a snapshot whenever it changes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse

from voxstack.core import devstate
from voxstack.core.deps import BackendsDep, SettingsDep
from voxstack.core.routes.pages import page

router = APIRouter(include_in_schema=False)


@router.get("/dev")
async def dashboard() -> FileResponse:
    return page("dev.html")


@router.get("/v1/dev/state")
async def state(settings: SettingsDep, backends: BackendsDep) -> dict[str, Any]:
    return devstate.snapshot(settings, await backends.health())


@router.get("/v1/dev/replays/{name}/{which}.wav")
async def replay_audio(name: str, which: Literal["old", "new"], settings: SettingsDep) -> FileResponse:
    """A replayed conversation's reply audio: the recording's (old) or the last replay's (new)."""
    path = devstate.replay_audio(settings, name, which)
    if path is None:
        raise HTTPException(404, f"no {which} reply audio of a replayed conversation {name[:64]!r}")
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "no-store"})


@router.get("/v1/dev/events")
async def events(request: Request, settings: SettingsDep, backends: BackendsDep) -> StreamingResponse:
    def stopping() -> bool:
        return bool(getattr(request.app.state, "draining", False))

    async def stream() -> AsyncIterator[str]:
        yield "retry: 250\n\n"  # reconnect quickly: a core reload ends this stream
        async for snapshot in devstate.changes(settings, backends.health, stopping):
            yield f"data: {json.dumps(snapshot)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
