"""``POST /v1/chat/completions``: OpenAI's chat API on the llm service, streamed or whole.

Fields OpenAI defines and voxstack has no use for are ignored (as OpenAI-
compatible servers do); fields it cannot honour (``n`` above 1) are a 400.
With ``stream`` the reply goes out as ``chat.completion.chunk`` server-sent
events ending in ``[DONE]``; a client that disconnects cancels the generation.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from voxstack.codes import OpenAICode
from voxstack.core.deps import PipelineDep, SettingsDep
from voxstack.core.inputs import Text, check_length
from voxstack.core.openai.errors import OPENAI_ERRORS, OpenAIRoute, stream_error
from voxstack.core.openai.models import resolve
from voxstack.errors import InvalidInput, VoxError
from voxstack.v1 import llm_pb2

router = APIRouter(tags=["openai"], route_class=OpenAIRoute, responses=OPENAI_ERRORS)

ROLES = {
    "system": llm_pb2.ROLE_SYSTEM,
    "developer": llm_pb2.ROLE_SYSTEM,
    "user": llm_pb2.ROLE_USER,
    "assistant": llm_pb2.ROLE_ASSISTANT,
}
FINISH = {llm_pb2.FINISH_REASON_LENGTH: "length"}


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr
    messages: Annotated[list[Message], Field(min_length=1, max_length=256)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: StrictStr | Annotated[list[StrictStr], Field(max_length=4)] | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    n: int = Field(1, ge=1)
    user: str | None = Field(None, max_length=256)


def to_request(body: CompletionRequest, max_chars: int) -> llm_pb2.GenerateRequest:
    if body.n != 1:
        raise InvalidInput("n: only one choice per request is supported", reason=OpenAICode.UNSUPPORTED_N)
    messages = []
    for index, message in enumerate(body.messages):
        text = message.text()
        check_length(f"messages[{index}].content", text, max_chars)
        messages.append(llm_pb2.ChatMessage(role=ROLES[message.role], content=text))
    if body.messages[-1].role == "assistant":
        raise InvalidInput(
            "messages: the last message must be the user's (or a system message)", reason=OpenAICode.BAD_ROLES
        )
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    sampling = llm_pb2.SamplingParams(stop=stops)
    limit = body.max_completion_tokens or body.max_tokens
    if limit is not None:
        sampling.max_tokens = limit
    if body.temperature is not None:
        sampling.temperature = body.temperature
    if body.top_p is not None:
        sampling.top_p = body.top_p
    if body.seed is not None:
        sampling.seed = body.seed
    return llm_pb2.GenerateRequest(messages=messages, sampling=sampling)


def usage(done: llm_pb2.GenerateDone) -> dict[str, int]:
    prompt, completion = done.usage.prompt_tokens, done.usage.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


_ANSWERS: dict[int | str, dict[str, object]] = {
    200: {
        "description": "A `chat.completion`, or with `stream` `chat.completion.chunk` events ending in `[DONE]`.",
        "content": {"application/json": {}, "text/event-stream": {"schema": {"type": "object"}}},
    }
}


@router.post("/v1/chat/completions", response_model=None, responses=_ANSWERS)
async def completions(
    body: CompletionRequest, pipeline: PipelineDep, settings: SettingsDep
) -> dict[str, object] | StreamingResponse:
    """OpenAI's chat completions: the reply whole, or streamed as chunks (`stream: true`)."""
    model = resolve(settings, body.model, "llm")
    request = to_request(body, settings.core.max_text_chars)
    ident = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    replies = pipeline.complete(request)
    first = await anext(replies)  # fail before the 200 when the llm cannot be reached
    if not body.stream:
        text: list[str] = []
        reply = first
        while reply.WhichOneof("event") == "delta":
            text.append(reply.delta)
            reply = await anext(replies)
        return {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.done.text or "".join(text)},
                    "finish_reason": FINISH.get(reply.done.finish_reason, "stop"),
                }
            ],
            "usage": usage(reply.done),
        }
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        data = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(data)}\n\n"

    async def events() -> AsyncIterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        reply = first
        try:
            while reply.WhichOneof("event") == "delta":
                yield chunk({"content": reply.delta})
                reply = await anext(replies)
        except VoxError as exc:
            yield stream_error(exc, detail=settings.error_detail)
            return
        yield chunk({}, FINISH.get(reply.done.finish_reason, "stop"))
        if include_usage:
            data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
            yield f"data: {json.dumps(data | {'choices': [], 'usage': usage(reply.done)})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
