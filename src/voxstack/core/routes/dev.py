"""The dev dashboard (dev mode only; 404 in prod): ``GET /dev``, ``GET /v1/dev/state``, ``GET /v1/dev/events``,
the replayed conversations' reply audio, and pinning a recorded turn.

Each service's state, pid, generation, health, reloads and last error, from
the supervisor's run state; the events stream (server-sent events) sends a
snapshot whenever it changes. The one write: a recorded turn pinned as a
conversation test (the console's "pin this turn").
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from voxstack.core import devstate
from voxstack.core.deps import BackendsDep, SettingsDep
from voxstack.core.routes.pages import page
from voxstack.errors import InvalidInput
from voxstack.recordings import TURN_FILE
from voxstack.registry import REPLAY_DIR_ENV

router = APIRouter(include_in_schema=False)
RECORDING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


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


class PinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description="The conversation's name: its folder under the pinned ones.")


@router.post("/v1/dev/recordings/{recording}/pin")
async def pin_turn(recording: str, body: PinRequest, settings: SettingsDep) -> dict[str, str]:
    """Pin a recorded turn (the console's "pin this turn") into the conversation tests `voxstack dev --replay`
    replays (``VOXSTACK_DEV_REPLAY``, else ./conversations)."""
    from voxstack.expectations import pin
    from voxstack.recordings import RecordingError, load

    if not RECORDING_ID.fullmatch(recording):
        raise InvalidInput(f"{recording[:80]!r} is not a recording id")
    folder = settings.recordings_dir / recording
    for _ in range(100):  # written just after the reply went out
        if (folder / TURN_FILE).exists():
            break
        await asyncio.sleep(0.05)
    target = Path(os.environ.get(REPLAY_DIR_ENV) or "conversations")
    try:
        pinned = await asyncio.to_thread(lambda: pin(load(folder), body.name, target))
    except RecordingError as exc:
        raise InvalidInput(str(exc)) from None
    return {"name": body.name, "path": str(pinned)}


@router.get("/v1/dev/events")
async def events(request: Request, settings: SettingsDep, backends: BackendsDep) -> StreamingResponse:
    def stopping() -> bool:
        return bool(getattr(request.app.state, "draining", False))

    async def stream() -> AsyncIterator[str]:
        yield "retry: 250\n\n"  # reconnect quickly: a core reload ends this stream
        async for snapshot in devstate.changes(settings, backends.health, stopping):
            yield f"data: {json.dumps(snapshot)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
