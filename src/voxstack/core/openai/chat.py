"""``POST /v1/chat/completions``: OpenAI's chat API on the llm service, streamed or whole.

Fields OpenAI defines and voxstack has no use for are ignored (as OpenAI-
compatible servers do); fields it cannot honour (``n`` above 1) are a 400.
With ``stream`` the reply goes out as ``chat.completion.chunk`` server-sent
events ending in ``[DONE]``; a client that disconnects cancels the generation.
``tools`` and ``tool_choice`` go to the llm; a reply that calls tools comes
back as ``tool_calls`` (finish reason ``tool_calls``), and the caller's
``tool`` messages with the results are the next request's.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from voxstack.codes import OpenAICode
from voxstack.core.deps import PipelineDep, SettingsDep
from voxstack.core.inputs import Text, check_length
from voxstack.core.openai.errors import OPENAI_ERRORS, OpenAIRoute, stream_error
from voxstack.core.openai.models import resolve
from voxstack.errors import InvalidInput, VoxError
from voxstack.toolcalls import check_answers, check_tools
from voxstack.v1 import llm_pb2

router = APIRouter(tags=["openai"], route_class=OpenAIRoute, responses=OPENAI_ERRORS)

ROLES = {
    "system": llm_pb2.ROLE_SYSTEM,
    "developer": llm_pb2.ROLE_SYSTEM,
    "user": llm_pb2.ROLE_USER,
    "assistant": llm_pb2.ROLE_ASSISTANT,
    "tool": llm_pb2.ROLE_TOOL,
}
FINISH = {llm_pb2.FINISH_REASON_LENGTH: "length", llm_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls"}


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class CalledFunction(BaseModel):
    name: Annotated[StrictStr, Field(max_length=64)]
    arguments: Annotated[StrictStr, Field(max_length=65_536)] = "{}"


class CallIn(BaseModel):
    """A call an earlier assistant message made (sent back with the conversation)."""

    id: Annotated[StrictStr, Field(max_length=64)]
    type: Literal["function"] = "function"
    function: CalledFunction


class FunctionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr
    description: Annotated[StrictStr, Field(max_length=4096)] = ""
    parameters: dict[str, Any] | None = None


class ToolIn(BaseModel):
    type: Literal["function"]
    function: FunctionIn


class NamedFunction(BaseModel):
    name: StrictStr


class ToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[TextPart] | None = None
    tool_calls: Annotated[list[CallIn], Field(max_length=32)] | None = None
    tool_call_id: Annotated[StrictStr, Field(max_length=64)] | None = None

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
    tools: Annotated[list[ToolIn], Field(max_length=32)] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoice | None = None


def to_request(body: CompletionRequest, max_chars: int) -> llm_pb2.GenerateRequest:
    if body.n != 1:
        raise InvalidInput("n: only one choice per request is supported", reason=OpenAICode.UNSUPPORTED_N)
    messages = []
    for index, message in enumerate(body.messages):
        text = message.text()
        check_length(f"messages[{index}].content", text, max_chars)
        calls = [llm_pb2.ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
                 for c in message.tool_calls or ()]  # fmt: skip
        messages.append(
            llm_pb2.ChatMessage(
                role=ROLES[message.role], content=text, tool_calls=calls, tool_call_id=message.tool_call_id or ""
            )
        )
    if body.messages[-1].role == "assistant":
        raise InvalidInput(
            "messages: the last message must be the user's, a tool's or a system message",
            reason=OpenAICode.BAD_ROLES,
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
    tools = [
        llm_pb2.Tool(
            name=t.function.name,
            description=t.function.description,
            parameters=json.dumps(t.function.parameters) if t.function.parameters is not None else "",
        )
        for t in body.tools or ()
    ]
    choice = body.tool_choice.function.name if isinstance(body.tool_choice, ToolChoice) else body.tool_choice or ""
    # Checked here too (the llm checks every caller's): a 400 that names the field, before the llm is asked.
    check_tools([(t.name, t.description, t.parameters) for t in tools], choice)
    check_answers([(m.role, [c.id for c in m.tool_calls or ()], m.tool_call_id or "") for m in body.messages])
    return llm_pb2.GenerateRequest(messages=messages, sampling=sampling, tools=tools, tool_choice=choice)


def tool_calls(done: llm_pb2.GenerateDone) -> list[dict[str, Any]]:
    """The reply's calls in OpenAI's shape."""
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in done.tool_calls
    ]


def message(done: llm_pb2.GenerateDone, streamed: str) -> dict[str, Any]:
    """The reply as OpenAI's assistant message: its text, or (content null) its calls."""
    calls = tool_calls(done)
    text = done.text or streamed
    if calls:
        return {"role": "assistant", "content": text or None, "tool_calls": calls}
    return {"role": "assistant", "content": text}


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
                    "message": message(reply.done, "".join(text)),
                    "finish_reason": FINISH.get(reply.done.finish_reason, "stop"),
                }
            ],
            "usage": usage(reply.done),
        }
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
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
        for index, call in enumerate(tool_calls(reply.done)):  # known whole once the reply is done
            yield chunk({"tool_calls": [{"index": index, **call}]})
        yield chunk({}, FINISH.get(reply.done.finish_reason, "stop"))
        if include_usage:
            data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
            yield f"data: {json.dumps(data | {'choices': [], 'usage': usage(reply.done)})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
