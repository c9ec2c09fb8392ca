"""The client events of OpenAI's Realtime API that ``WS /v1/realtime`` takes, typed and checked.

The shapes are those of the ``openai`` SDK's ``openai.types.realtime`` (the GA
interface). Fields we do not act on are ignored, as OpenAI ignores what a model
does not use; a field of the wrong type or out of range is a ``ProtocolError``
naming it (``param``), which the connection sends as an ``error`` event while
the session goes on.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, TypeAdapter, ValidationError

from voxstack.toolcalls import MAX_TOOLS

#: Bytes of one client event's JSON: an append of 10 s of 24 kHz PCM in base64 fits twice.
MAX_EVENT_BYTES = 2 * 1024 * 1024
MAX_TEXT_CHARS = 100_000


_MEMBER = re.compile(r"^(int|str|float|bool|dict|list)$|[\[-]")


class ProtocolError(Exception):
    """A client event that cannot be acted on: OpenAI's ``error`` event says why, the session goes on."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid_value",
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.kind = kind


class Lenient(BaseModel):
    """Unknown fields are ignored (newer SDKs send more); the known ones are checked strictly."""

    model_config = ConfigDict(extra="ignore")


class AudioFormat(Lenient):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
    rate: StrictInt | None = None


class TurnDetection(Lenient):
    type: Literal["server_vad", "semantic_vad"]
    threshold: float | None = Field(None, gt=0, lt=1)
    prefix_padding_ms: StrictInt | None = Field(None, ge=0, le=2000)
    silence_duration_ms: StrictInt | None = Field(None, ge=32, le=10_000)
    create_response: StrictBool = True
    interrupt_response: StrictBool = True
    eagerness: Literal["low", "medium", "high", "auto"] | None = None


class Transcription(Lenient):
    model: StrictStr | None = None
    language: StrictStr | None = Field(None, max_length=16)
    prompt: StrictStr | None = None


class AudioInput(Lenient):
    format: AudioFormat | None = None
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = None


class AudioOutput(Lenient):
    format: AudioFormat | None = None
    voice: StrictStr | None = Field(None, max_length=128)
    speed: float | None = Field(None, ge=0.25, le=4)


class AudioConfig(Lenient):
    input: AudioInput | None = None
    output: AudioOutput | None = None


class FunctionTool(Lenient):
    type: Literal["function"] = "function"
    name: StrictStr = Field(max_length=64)
    description: StrictStr = Field("", max_length=4096)
    parameters: dict[str, Any] | None = None


class ToolChoiceFunction(Lenient):
    type: Literal["function"]
    name: StrictStr = Field(max_length=64)


ToolChoice = Literal["auto", "none", "required"] | ToolChoiceFunction
MaxTokens = Annotated[int, Field(ge=1, le=4096)] | Literal["inf"]


class SessionFields(Lenient):
    """``session.update``'s session: every field optional, what is set replaces the session's."""

    type: Literal["realtime"] | None = None
    model: StrictStr | None = None
    instructions: StrictStr | None = Field(None, max_length=MAX_TEXT_CHARS)
    audio: AudioConfig | None = None
    output_modalities: list[Literal["text", "audio"]] | None = Field(None, min_length=1, max_length=1)
    tools: list[FunctionTool] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_output_tokens: MaxTokens | None = None


class ContentPart(Lenient):
    type: Literal["input_text", "input_audio", "output_text", "output_audio", "text", "audio"]
    text: StrictStr | None = Field(None, max_length=MAX_TEXT_CHARS)
    audio: StrictStr | None = None  # base64, in the session's input format
    transcript: StrictStr | None = Field(None, max_length=MAX_TEXT_CHARS)


class Item(Lenient):
    id: StrictStr | None = Field(None, max_length=64)
    type: Literal["message", "function_call", "function_call_output"]
    role: Literal["user", "assistant", "system"] | None = None
    content: list[ContentPart] | None = Field(None, max_length=16)
    call_id: StrictStr | None = Field(None, max_length=64)
    name: StrictStr | None = Field(None, max_length=64)
    arguments: StrictStr | None = Field(None, max_length=MAX_TEXT_CHARS)
    output: StrictStr | None = Field(None, max_length=MAX_TEXT_CHARS)


class ResponseFields(Lenient):
    """``response.create``'s response: overrides of the session's settings for this response only."""

    instructions: StrictStr | None = Field(None, max_length=MAX_TEXT_CHARS)
    output_modalities: list[Literal["text", "audio"]] | None = Field(None, min_length=1, max_length=1)
    tools: list[FunctionTool] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_output_tokens: MaxTokens | None = None
    conversation: Literal["auto", "none"] | None = None
    input: list[Item] | None = Field(None, max_length=256)
    audio: AudioConfig | None = None
    metadata: dict[str, StrictStr] | None = None


class Event(Lenient):
    event_id: StrictStr | None = Field(None, max_length=64)


class SessionUpdate(Event):
    type: Literal["session.update"]
    session: SessionFields


class Append(Event):
    type: Literal["input_audio_buffer.append"]
    audio: StrictStr


class Commit(Event):
    type: Literal["input_audio_buffer.commit"]


class Clear(Event):
    type: Literal["input_audio_buffer.clear"]


class ItemCreate(Event):
    type: Literal["conversation.item.create"]
    previous_item_id: StrictStr | None = None
    item: Item


class ItemRetrieve(Event):
    type: Literal["conversation.item.retrieve"]
    item_id: StrictStr


class ItemDelete(Event):
    type: Literal["conversation.item.delete"]
    item_id: StrictStr


class ItemTruncate(Event):
    type: Literal["conversation.item.truncate"]
    item_id: StrictStr
    content_index: StrictInt = Field(ge=0)
    audio_end_ms: StrictInt = Field(ge=0)


class ResponseCreate(Event):
    type: Literal["response.create"]
    response: ResponseFields | None = None


class ResponseCancel(Event):
    type: Literal["response.cancel"]
    response_id: StrictStr | None = None


class OutputClear(Event):
    type: Literal["output_audio_buffer.clear"]


ClientEvent = Annotated[
    SessionUpdate
    | Append
    | Commit
    | Clear
    | ItemCreate
    | ItemRetrieve
    | ItemDelete
    | ItemTruncate
    | ResponseCreate
    | ResponseCancel
    | OutputClear,
    Field(discriminator="type"),
]
_CLIENT_EVENT: TypeAdapter[ClientEvent] = TypeAdapter(ClientEvent)
KNOWN_TYPES = frozenset(
    t.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    for t in (SessionUpdate, Append, Commit, Clear, ItemCreate, ItemRetrieve, ItemDelete, ItemTruncate,
              ResponseCreate, ResponseCancel, OutputClear)
)  # fmt: skip


def event_id_of(text: str) -> str | None:
    """The client's ``event_id`` of a frame, when it can be read (for the error that answers it)."""
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    value = raw.get("event_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and len(value) <= 64 else None


def parse(text: str) -> ClientEvent:
    """A client frame as its event, or ProtocolError naming what is wrong."""
    if len(text) > MAX_EVENT_BYTES:
        raise ProtocolError(
            f"the event is {len(text)} bytes; at most {MAX_EVENT_BYTES}", code="event_too_large", param=None
        )
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"the event is not JSON: {exc}", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise ProtocolError("an event is a JSON object with a 'type'", code="invalid_event")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("the event has no 'type' string", code="invalid_event", param="type")
    if kind not in KNOWN_TYPES:
        raise ProtocolError(f"unknown or unsupported event type {kind[:64]!r}", code="invalid_event_type", param="type")
    try:
        return _CLIENT_EVENT.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        # The tagged union's first location element is the event type itself; pydantic's names of the
        # union members it tried ("int", "constrained-int", "literal['inf']") are no field's.
        where = ".".join(str(p) for p in first["loc"][1:] if not _MEMBER.search(str(p)))
        raise ProtocolError(f"{kind}: {where or 'event'}: {first['msg']}", param=where or None) from None
