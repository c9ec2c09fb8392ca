"""What every llm engine gives the servicer: a validated request in, a stream of events out."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol

from voxstack.codes import ErrorCode
from voxstack.config import LlmSettings
from voxstack.errors import InvalidInput
from voxstack.v1 import llm_pb2

ROLES = {llm_pb2.ROLE_SYSTEM: "system", llm_pb2.ROLE_USER: "user", llm_pb2.ROLE_ASSISTANT: "assistant"}
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
    reason: str  # "stop", "length" or "cancelled"
    prompt_tokens: int
    completion_tokens: int


Event = Delta | Finished


@dataclass(frozen=True)
class Conversation:
    """A validated request: chat messages as dicts, and sampling."""

    messages: list[dict[str, str]] = field(default_factory=list)
    sampling: Sampling = field(default_factory=lambda: Sampling(0.7, 0.95, 256))


class LlmEngine(Protocol):
    async def load(self) -> None:
        """Load (or connect) and produce one warm-up token; raise StartupError when impossible."""

    def stream(self, conversation: Conversation) -> AsyncGenerator[Event, None]:
        """Deltas, then exactly one Finished. Closing the iterator stops generation."""

    async def close(self) -> None: ...


def conversation_from(request: llm_pb2.GenerateRequest, settings: LlmSettings) -> Conversation:
    """Validate a request; every problem names its field."""
    if not request.messages:
        raise InvalidInput("messages is empty: send at least one user message", reason=ErrorCode.EMPTY_MESSAGES)
    messages: list[dict[str, str]] = []
    for i, message in enumerate(request.messages):
        role = ROLES.get(message.role)
        if role is None:
            name = llm_pb2.Role.Name(message.role) if message.role in llm_pb2.Role.values() else str(message.role)
            raise InvalidInput(
                f"messages[{i}].role {name} is not ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT", reason=ErrorCode.BAD_ROLE
            )
        messages.append({"role": role, "content": message.content})
    if not any(m["role"] == "user" and m["content"].strip() for m in messages):
        raise InvalidInput("messages has no user message with text", reason=ErrorCode.NO_USER_MESSAGE)
    if messages[0]["role"] != "system" and settings.system_prompt:
        messages.insert(0, {"role": "system", "content": settings.system_prompt})
    return Conversation(messages, sampling_from(request.sampling, settings))


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
