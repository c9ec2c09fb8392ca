"""The messages of ``WS /v1/stream``, typed: what a client sends and every event the server sends.

docs/API.md documents them; this module is where they are defined. Client
messages are validated on the way in (a bad one is an ``error`` event naming
the field); server events are built from these models and sent as their JSON.
"""

from __future__ import annotations

import json
import uuid
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from voxstack.audio import MAX_RATE, MIN_RATE
from voxstack.codes import ErrorCode
from voxstack.core.sessions import check_session_id
from voxstack.errors import InvalidInput, TooLarge
from voxstack.toolcalls import check_tools


class EventType(str, Enum):
    """The ``type`` of each server event, in the order a turn produces them."""

    READY = "ready"
    SPEECH_STARTED = "speech_started"
    PARTIAL = "partial"
    SPEECH_ENDED = "speech_ended"
    TRANSCRIPT = "transcript"
    REPLY_DELTA = "reply_delta"
    AUDIO = "audio"
    REPLY_DONE = "reply_done"
    TOOL_CALL = "tool_call"
    BARGE_IN = "barge_in"
    ERROR = "error"


# ---- client -> server ---------------------------------------------------------


#: Turns a config may carry as a new session's history (the session keeps what its bounds allow).
MAX_HISTORY_TURNS = 100


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: StrictStr = Field(max_length=100_000)
    assistant: StrictStr = Field(max_length=100_000)


class ToolSpec(BaseModel):
    """A function the assistant may call; the client runs it and sends back a ``tool_result``."""

    model_config = ConfigDict(extra="ignore")

    name: StrictStr = Field(max_length=64)
    description: StrictStr = Field("", max_length=1024)
    parameters: dict[str, Any] | None = Field(None, description="A JSON schema of the arguments (an object).")


class StreamConfig(BaseModel):
    """The first message: how the audio that follows is encoded, and the session it belongs to."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["config"]
    sample_rate: StrictInt = Field(ge=MIN_RATE, le=MAX_RATE, description="Rate of the PCM16 frames that follow.")
    channels: StrictInt = Field(1, ge=1, le=2, description="1 or 2 (interleaved).")
    session_id: StrictStr | None = Field(None, description="Continue this session; none = a new one.")
    language: StrictStr = Field("", max_length=16, description="ISO 639-1, 'auto', or empty for the asr's default.")
    interim_results: StrictBool = Field(True, description="Send partial transcripts while the user speaks.")
    voice: StrictStr = Field("", max_length=128, description="tts voice of the replies; empty = the core's voice.")
    record: StrictBool = Field(
        True, description="Record the turns where the core records turns (core.record_turns); replays send false."
    )
    tools: list[ToolSpec] = Field(
        default_factory=list,
        max_length=32,
        description="Functions the assistant may call (a `tool_call` event); the client answers each with "
        '`{"type": "tool_result", "id": ..., "content": ...}` and the reply goes on.',
    )
    history: list[HistoryTurn] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_TURNS,
        description="Earlier turns a new session starts with (`voxstack replay` restores a recorded turn's); "
        "ignored for a session that has a history already.",
    )


# What each field's error is called, so clients can branch on it.
_CONFIG_REASONS = {
    "type": ErrorCode.CONFIG_FIRST,
    "sample_rate": ErrorCode.BAD_SAMPLE_RATE,
    "channels": ErrorCode.BAD_CHANNELS,
    "session_id": ErrorCode.BAD_SESSION_ID,
    "voice": ErrorCode.BAD_VOICE,
    "history": ErrorCode.BAD_CONFIG,
    "tools": ErrorCode.BAD_TOOLS,
}
_CONFIG_HINT = '{"type": "config", "sample_rate": N, ...}'


def parse_config(text: str | None) -> tuple[StreamConfig, str]:
    """The config and the session id it names (a new one if none): InvalidInput naming the field otherwise."""
    if text is None:
        raise InvalidInput(f"the first message must be a JSON text frame {_CONFIG_HINT}", reason=ErrorCode.CONFIG_FIRST)
    try:
        message = _json(text)
    except ValueError as exc:
        raise InvalidInput(f"the config is not JSON: {exc}", reason=ErrorCode.BAD_CONFIG) from None
    if not isinstance(message, dict) or message.get("type") != "config":
        raise InvalidInput(f"the first message must be JSON {_CONFIG_HINT}", reason=ErrorCode.CONFIG_FIRST)
    try:
        config = StreamConfig.model_validate(message)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "config"
        if field == "sample_rate":
            problem = f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}"
        elif field == "channels":
            problem = "channels must be 1 or 2"
        else:
            problem = f"{field}: {first['msg']}"
        raise InvalidInput(problem, reason=_CONFIG_REASONS.get(field, ErrorCode.BAD_CONFIG)) from None
    session_id = check_session_id(config.session_id) if config.session_id else uuid.uuid4().hex
    check_tools([(t.name, t.description, json.dumps(t.parameters or {})) for t in config.tools], "")
    return config, session_id


def is_end(text: str) -> bool:
    """Whether a text frame is ``{"type": "end"}`` (the client has no more audio)."""
    return _message_type(text) == "end"


def typed_text(text: str, max_chars: int) -> str:
    """The text of a ``{"type": "text", "text": ...}`` frame (a turn typed instead of spoken).

    InvalidInput when the frame is of another type, or its text is not a non-empty string; TooLarge when the
    text is over ``max_chars``.
    """
    if _message_type(text) != "text":
        raise InvalidInput(
            'after the config only binary audio, {"type": "text", "text": ...}, {"type": "tool_result", ...} and '
            '{"type": "end"} are expected; this text frame was ignored',
            reason=ErrorCode.UNEXPECTED_MESSAGE,
        )
    said = _json(text).get("text")
    if not isinstance(said, str) or not said.strip():
        raise InvalidInput('a text message needs a non-empty "text" string', reason=ErrorCode.EMPTY_TEXT)
    if len(said) > max_chars:
        raise TooLarge(f"text is {len(said)} characters; the limit is {max_chars}", reason=ErrorCode.TEXT_TOO_LONG)
    return said


def tool_result(text: str) -> tuple[str, str] | None:
    """The call id and content of a ``{"type": "tool_result", "id": ..., "content": ...}`` frame, else None.

    InvalidInput when it is that type but its fields are not strings (content: a string, or any JSON,
    sent on as its text).
    """
    if _message_type(text) != "tool_result":
        return None
    message = _json(text)
    call, content = message.get("id"), message.get("content", "")
    if not isinstance(call, str) or not call:
        raise InvalidInput('a tool_result needs the "id" of the tool_call it answers', reason=ErrorCode.BAD_TOOL_RESULT)
    return call, content if isinstance(content, str) else json.dumps(content)


def _message_type(text: str) -> object:
    try:
        message = _json(text)
    except ValueError:
        return None
    return message.get("type") if isinstance(message, dict) else None


def _json(text: str) -> Any:
    """``json.loads``; any JSON it cannot take (nesting too deep, numbers of thousands of digits) a
    ValueError whose words are ours."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at character {exc.pos}") from None
    except ValueError:  # Python's own words about its integer limit say nothing useful to a caller
        raise ValueError("it holds a number too long to read") from None


# ---- server -> client ---------------------------------------------------------


class Event(BaseModel):
    type: EventType

    def payload(self) -> dict[str, Any]:
        """The JSON object sent: fields that are unset (None) are left out."""
        return self.model_dump(mode="json", exclude_none=True)


class Ready(Event):
    type: Literal[EventType.READY] = EventType.READY
    session_id: str


class SpeechStarted(Event):
    type: Literal[EventType.SPEECH_STARTED] = EventType.SPEECH_STARTED
    utterance: int


class Partial(Event):
    type: Literal[EventType.PARTIAL] = EventType.PARTIAL
    utterance: int
    text: str


class SpeechEnded(Event):
    type: Literal[EventType.SPEECH_ENDED] = EventType.SPEECH_ENDED
    utterance: int
    # What ended it: turn_model (the turn model said the speaker finished), silence, words (the llm judged the words
    # whole at a pause the turn model had not ended), stream_end or max_length.
    rule: str = ""


class Transcript(Event):
    type: Literal[EventType.TRANSCRIPT] = EventType.TRANSCRIPT
    utterance: int
    text: str


class ReplyDelta(Event):
    type: Literal[EventType.REPLY_DELTA] = EventType.REPLY_DELTA
    turn: int
    text: str


class Audio(Event):
    """Announces the binary frame that follows it: PCM16 mono of one sentence of the reply."""

    type: Literal[EventType.AUDIO] = EventType.AUDIO
    turn: int
    index: int
    text: str
    sample_rate: int
    bytes: int


class ReplyDone(Event):
    type: Literal[EventType.REPLY_DONE] = EventType.REPLY_DONE
    turn: int
    text: str
    timings: dict[str, float]
    prompt_tokens: int
    completion_tokens: int
    recording: str | None = None  # the recorded turn's id, when turns are recorded (dev): what "pin" takes


class ToolCall(Event):
    """The assistant calls one of the config's tools: answer with a ``tool_result`` naming ``id``."""

    type: Literal[EventType.TOOL_CALL] = EventType.TOOL_CALL
    turn: int
    id: str
    name: str
    arguments: str  # a JSON object, in text


class BargeIn(Event):
    type: Literal[EventType.BARGE_IN] = EventType.BARGE_IN
    turn: int


class Error(Event):
    type: Literal[EventType.ERROR] = EventType.ERROR
    code: str
    message: str
    #: The turn it ended, if it happened in one.
    turn: int | None = None
    #: asr, llm or tts when a backend call failed.
    stage: str | None = None
    #: For a refusal under load: seconds after which to try again.
    retry_after: int | None = None
