"""What every llm engine gives the servicer: a validated request in, a stream of events out."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol

from voxstack.codes import ErrorCode
from voxstack.config import LlmSettings
from voxstack.errors import InvalidInput
from voxstack.toolcalls import Tool, ToolCall, check_answers, check_tools
from voxstack.v1 import llm_pb2

ROLES = {
    llm_pb2.ROLE_SYSTEM: "system",
    llm_pb2.ROLE_USER: "user",
    llm_pb2.ROLE_ASSISTANT: "assistant",
    llm_pb2.ROLE_TOOL: "tool",
}
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 64
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finished:
    reason: str  # "stop", "length", "cancelled" or "tool_calls"
    prompt_tokens: int
    completion_tokens: int
    tool_calls: tuple[ToolCall, ...] = ()
    drafted: int = 0  # drafted tokens checked (llm/lookup_draft.py)
    kept: int = 0  # of those, the ones the model wrote too


@dataclass(frozen=True)
class EndOfTurn:
    """How likely the last user message's words are a whole turn (llm/end_of_turn.py)."""

    probability: float


Event = Delta | Finished | EndOfTurn


@dataclass(frozen=True)
class ChatRequest:
    """A validated request: chat messages as dicts (OpenAI's shape: an assistant's ``tool_calls``, a tool
    message's ``tool_call_id``), sampling, and the tools the model may call."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    sampling: Sampling = field(default_factory=lambda: Sampling(0.7, 0.95, 256))
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"
    end_of_turn: bool = False  # also tell how likely the last user message is a whole turn


class LlmEngine(Protocol):
    async def load(self) -> None:
        """Load (or connect) and produce one warm-up token; raise StartupError when impossible."""

    def stream(self, chat: ChatRequest) -> AsyncGenerator[Event, None]:
        """Deltas, then exactly one Finished. Closing the iterator stops generation."""

    async def close(self) -> None: ...


def chat_request_from(request: llm_pb2.GenerateRequest, settings: LlmSettings) -> ChatRequest:
    """Validate a request; every problem names its field."""
    if not request.messages:
        raise InvalidInput("messages is empty: send at least one user message", reason=ErrorCode.EMPTY_MESSAGES)
    messages: list[dict[str, Any]] = []
    for i, message in enumerate(request.messages):
        role = ROLES.get(message.role)
        if role is None:
            name = llm_pb2.Role.Name(message.role) if message.role in llm_pb2.Role.values() else str(message.role)
            raise InvalidInput(
                f"messages[{i}].role {name} is not ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT or ROLE_TOOL",
                reason=ErrorCode.BAD_ROLE,
            )
        entry: dict[str, Any] = {"role": role, "content": message.content}
        if message.tool_calls:
            entry["tool_calls"] = [_openai_call(c) for c in message.tool_calls]
        if role == "tool":
            entry["tool_call_id"] = message.tool_call_id
        messages.append(entry)
    check_answers(
        [
            (m["role"], [c.id for c in r.tool_calls], r.tool_call_id)
            for m, r in zip(messages, request.messages, strict=True)
        ]
    )
    if not any(m["role"] == "user" and m["content"].strip() for m in messages):
        raise InvalidInput("messages has no user message with text", reason=ErrorCode.NO_USER_MESSAGE)
    if messages[0]["role"] != "system" and settings.system_prompt:
        messages.insert(0, {"role": "system", "content": settings.system_prompt})
    tools, choice = check_tools([(t.name, t.description, t.parameters) for t in request.tools], request.tool_choice)
    return ChatRequest(messages, sampling_from(request.sampling, settings), tools, choice, request.end_of_turn)


def _openai_call(call: llm_pb2.ToolCall) -> dict[str, Any]:
    """A call as chat templates read it: OpenAI's shape, the arguments as an object."""
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        arguments = call.arguments
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}}


def sampling_from(params: llm_pb2.SamplingParams, settings: LlmSettings) -> Sampling:
    temperature = params.temperature if params.HasField("temperature") else settings.temperature
    if not 0.0 <= temperature <= 2.0:
        raise InvalidInput(
            f"sampling.temperature {temperature:g} is out of range 0 to 2", reason=ErrorCode.BAD_SAMPLING
        )
    top_p = params.top_p if params.HasField("top_p") else settings.top_p
    if not 0.0 < top_p <= 1.0:
        raise InvalidInput(f"sampling.top_p {top_p:g} is out of range (0, 1]", reason=ErrorCode.BAD_SAMPLING)
    max_tokens = params.max_tokens if params.HasField("max_tokens") else settings.max_tokens
    if not 1 <= max_tokens <= settings.max_tokens_limit:
        raise InvalidInput(
            f"sampling.max_tokens {max_tokens} is out of range 1 to {settings.max_tokens_limit}",
            reason=ErrorCode.BAD_SAMPLING,
        )
    if len(params.stop) > MAX_STOP_SEQUENCES:
        raise InvalidInput(f"sampling.stop has {len(params.stop)} sequences; at most {MAX_STOP_SEQUENCES}")
    for i, stop in enumerate(params.stop):
        if not stop or len(stop) > MAX_STOP_CHARS:
            raise InvalidInput(
                f"sampling.stop[{i}] must be 1 to {MAX_STOP_CHARS} characters", reason=ErrorCode.BAD_SAMPLING
            )
    seed = params.seed if params.HasField("seed") else None
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise InvalidInput(f"sampling.seed {seed} is out of range 0 to {MAX_SEED}", reason=ErrorCode.BAD_SAMPLING)
    return Sampling(temperature, top_p, max_tokens, tuple(params.stop), seed)
