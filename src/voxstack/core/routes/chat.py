"""``/v1/chat``: text in, the reply streamed as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from voxstack.codes import ErrorCode
from voxstack.core.deps import PipelineDep, SettingsDep, session_key
from voxstack.core.errors import BACKEND_ERRORS, EDGE_ERRORS, error_body
from voxstack.core.inputs import Text, check_length
from voxstack.core.sessions import check_session_id
from voxstack.errors import InvalidInput, VoxError
from voxstack.v1 import llm_pb2

router = APIRouter(tags=["chat"], responses=EDGE_ERRORS | BACKEND_ERRORS)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: Text = Field(..., description="What the user says.")
    session_id: str | None = Field(None, description="Keeps the conversation's history between calls.")
    system: Text | None = Field(None, description="A system prompt for this turn.")


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def done_data(done: llm_pb2.GenerateDone) -> dict[str, object]:
    return {
        "text": done.text,
        "prompt_tokens": done.usage.prompt_tokens,
        "completion_tokens": done.usage.completion_tokens,
        "time_to_first_token": done.time_to_first_token_seconds,
    }


class EventStream(StreamingResponse):
    """Server-sent events."""

    media_type = "text/event-stream"


# Declared by hand rather than as the route's response class, which would give its errors that type too.
_STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `delta` events, then `done` (or `error`).",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string", "enum": ["delta", "done", "error"]},
                        "data": {"type": "string", "description": "A JSON object."},
                    },
                    "required": ["event", "data"],
                }
            }
        },
    }
}


@router.post("/v1/chat", response_class=Response, responses=_STREAMED)
async def chat(request: Request, body: ChatRequest, pipeline: PipelineDep, settings: SettingsDep) -> EventStream:
    """Text in; the reply streamed as server-sent events: `delta` events, then one `done`."""
    check_length("message", body.message, settings.core.max_text_chars)
    check_length("system", body.system, settings.core.max_text_chars)
    if body.session_id is not None:
        check_session_id(body.session_id)
    if not body.message.strip():
        raise InvalidInput("message is empty", reason=ErrorCode.EMPTY_TEXT)
    replies = pipeline.generate(session_key(request, body.session_id), body.message, body.system)
    # Fail before the 200 goes out when the llm cannot be reached at all.
    first = await anext(replies)

    async def events() -> AsyncIterator[str]:
        reply = first
        while True:
            if reply.WhichOneof("event") == "delta":
                yield sse("delta", {"text": reply.delta})
            else:
                pipeline.metrics.turn_done("chat", {"llm_first_token": reply.done.time_to_first_token_seconds})
                yield sse("done", done_data(reply.done))
            try:
                reply = await anext(replies)
            except StopAsyncIteration:
                return
            except VoxError as exc:
                pipeline.metrics.turns.labels("chat", "error").inc()
                yield sse("error", error_body(exc))
                return

    return EventStream(events())
