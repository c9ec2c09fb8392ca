"""The stable codes a client can branch on, in one place, each with what it means.

``ErrorCode``: voxstack's own API (the gRPC ``ErrorInfo.reason``, the HTTP
``error.code``, the WebSocket and Wyoming ``error`` events). ``OpenAICode``:
the OpenAI-compatible routes, in OpenAI's lower-case style. An error code is a
``str``, so it goes into JSON, protobuf and comparisons as its value.
``CloseCode``: the WebSocket close codes the core sends (RFC 6455 and IANA's
registry). docs/API.md's tables of codes are generated from here (``make docs``).

``python -m voxstack.codes FILE`` rewrites the tables between the markers in FILE.
"""

from __future__ import annotations

import sys
from enum import Enum, IntEnum
from pathlib import Path


class _Code(str, Enum):
    """A code with its meaning: ``NAME = "VALUE", "meaning"``."""

    meaning: str

    def __new__(cls, value: str, meaning: str) -> _Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    # The value, not "ErrorCode.NAME", wherever a code is printed (Python's default differs by version).
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class ErrorCode(_Code):
    # Malformed requests (gRPC INVALID_ARGUMENT, HTTP 400)
    INVALID_ARGUMENT = "INVALID_ARGUMENT", "a request a service refuses, with no more specific code"
    INVALID_REQUEST = "INVALID_REQUEST", "invalid JSON, unknown or missing fields, values out of range"
    UNDECODABLE = "UNDECODABLE", "a gRPC message that is not a valid protobuf of its type"
    EMPTY_BODY = "EMPTY_BODY", "a request body that should hold audio is empty"
    EMPTY_TEXT = "EMPTY_TEXT", "text to speak or to answer is empty or only spaces"
    EMPTY_AUDIO = "EMPTY_AUDIO", "audio with no samples"
    NO_SPEECH = "NO_SPEECH", "the audio holds no speech to answer"
    BAD_WAV = "BAD_WAV", "a WAV file that cannot be read (header, format, truncated data)"
    BAD_CONTENT_TYPE = "BAD_CONTENT_TYPE", "bad parameters in an `audio/L16` content type"
    BAD_SAMPLE_RATE = "BAD_SAMPLE_RATE", "a sample rate out of range"
    BAD_CHANNELS = "BAD_CHANNELS", "a channel count that is not taken there"
    BAD_ENCODING = "BAD_ENCODING", "an audio encoding the call does not take"
    BAD_PCM_LENGTH = "BAD_PCM_LENGTH", "PCM16 audio of an odd number of bytes"
    FORMAT_MISMATCH = "FORMAT_MISMATCH", "the declared audio format disagrees with the audio's own header"
    BAD_TURN_DETECTION = "BAD_TURN_DETECTION", "a stream's turn detection settings out of range"
    BAD_LANGUAGE = "BAD_LANGUAGE", "a language that is not an ISO 639-1 code the asr knows"
    BAD_OPTION = "BAD_OPTION", "a synthesis option out of range (speed, noise, speaker)"
    UNKNOWN_VOICE = "UNKNOWN_VOICE", "a voice the tts does not have (`GET /v1/voices` lists them)"
    UNKNOWN_SPEAKER = "UNKNOWN_SPEAKER", "a speaker the voice does not have"
    BAD_VOICE = "BAD_VOICE", "a malformed voice name in a WebSocket config"
    BAD_SESSION_ID = "BAD_SESSION_ID", "a session id that is not 1-64 of `A-Za-z0-9_.-`"
    BAD_SAMPLING = "BAD_SAMPLING", "llm sampling parameters out of range"
    BAD_ROLE = "BAD_ROLE", "a chat message role that is not system, user, assistant or tool"
    BAD_TOOLS = "BAD_TOOLS", "tools or a tool choice that do not validate (the message names the field)"
    BAD_TOOL_RESULT = "BAD_TOOL_RESULT", "a tool message that answers no call of an earlier assistant message"
    EMPTY_MESSAGES = "EMPTY_MESSAGES", "a chat with no messages"
    NO_USER_MESSAGE = "NO_USER_MESSAGE", "a chat with no user message that has text"
    UNKNOWN_MODEL = "UNKNOWN_MODEL", "a model the service does not serve"
    HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED", "a `Host` this core does not serve (`allowed_hosts`)"
    # Protocol (WebSocket, Wyoming, streaming calls)
    CONFIG_FIRST = "CONFIG_FIRST", "a stream whose first message is not its config"
    BAD_CONFIG = "BAD_CONFIG", "a WebSocket config that does not validate (the message names the field)"
    CONFIG_TIMEOUT = "CONFIG_TIMEOUT", "no WebSocket config arrived in time: the connection is closed"
    BAD_FRAME = "BAD_FRAME", "a WebSocket frame that is neither a JSON event nor audio of whole samples"
    UNEXPECTED_MESSAGE = "UNEXPECTED_MESSAGE", "a WebSocket event out of place (ignored; the conversation goes on)"
    BAD_EVENT = "BAD_EVENT", "a Wyoming event that is not well formed"
    BAD_AUDIO_FORMAT = "BAD_AUDIO_FORMAT", "Wyoming audio with a missing or wrong rate, width or channel count"
    UNEXPECTED_EVENT = "UNEXPECTED_EVENT", "a Wyoming event out of order (audio before its start, ...)"
    EVENT_TOO_LARGE = "EVENT_TOO_LARGE", "a Wyoming event header or payload over its limit"
    IDLE_TIMEOUT = "IDLE_TIMEOUT", "nothing arrived on a WebSocket for `ws_idle_seconds`: closed"
    SLOW_CLIENT = "SLOW_CLIENT", "a WebSocket client that does not read what it is sent: closed"
    # Limits (HTTP 408, 413, 429; gRPC RESOURCE_EXHAUSTED)
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED", "over a size, length or queue limit, with no more specific code"
    BODY_TIMEOUT = "BODY_TIMEOUT", "a request body that stopped arriving for `body_timeout`"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT", "a request that was too slow to arrive"
    UPLOAD_TOO_LARGE = "UPLOAD_TOO_LARGE", "an audio upload over `max_upload_bytes`"
    BODY_TOO_LARGE = "BODY_TOO_LARGE", "a JSON body over `max_json_bytes`"
    TEXT_TOO_LONG = "TEXT_TOO_LONG", "text over its length limit"
    AUDIO_TOO_LONG = "AUDIO_TOO_LONG", "audio longer than the asr takes (`max_audio_seconds`)"
    PROMPT_TOO_LONG = "PROMPT_TOO_LONG", "a conversation longer than the llm's context"
    AUDIO_TOO_FAST = "AUDIO_TOO_FAST", "WebSocket audio sent much faster than real time"
    TOO_MANY_MESSAGES = "TOO_MANY_MESSAGES", "WebSocket events over `ws_max_messages_per_second`"
    TEXT_TURNS_LIMITED = "TEXT_TURNS_LIMITED", "typed WebSocket turns faster than the limit (`retry_after` says when)"
    RATE_LIMITED = "RATE_LIMITED", "this client is over `rate_limit` (with `Retry-After`)"
    TOO_MANY_CONCURRENT = "TOO_MANY_CONCURRENT", "this client is over `client_concurrency`"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS", "the Wyoming server's connection limit is reached"
    QUEUE_FULL = "QUEUE_FULL", "a service's queue is full: retry later"
    OVERLOADED = "OVERLOADED", "the core has `max_conversations` open: a new WebSocket is refused (close 1013)"
    LLM_BUSY = "LLM_BUSY", "the llm cannot take another reply now (checked before it is called)"
    KEY_LLM_BUSY = "KEY_LLM_BUSY", "this API key's `key_llm_calls` are all open"
    KEY_CONVERSATIONS = "KEY_CONVERSATIONS", "this API key's WebSocket conversations are all open"
    # Access (HTTP 401, 403, 404, 405, 415, 499)
    UNAUTHORIZED = "UNAUTHORIZED", "no valid API key (when keys are set)"
    FORBIDDEN = "FORBIDDEN", "a request this core refuses to serve"
    ORIGIN_NOT_ALLOWED = "ORIGIN_NOT_ALLOWED", "an `Origin` that is neither the core's own nor in `cors_origins`"
    NOT_FOUND = "NOT_FOUND", "an unknown route or thing"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED", "a method the route does not take"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE", "a body that is not audio this route takes"
    CLIENT_CLOSED_REQUEST = "CLIENT_CLOSED_REQUEST", "the client went away before the answer"
    # The services' state (HTTP 409, 503, 504)
    FAILED_PRECONDITION = "FAILED_PRECONDITION", "a valid request the system is not in a state to run"
    NOT_READY = "NOT_READY", "a service still loading its model, or shutting down"
    RESTARTING = "RESTARTING", "the asr is reloading: its stream ends between utterances; open a new one"
    ASR_RESTARTED = "ASR_RESTARTED", "the asr restarted mid-speech and lost part of it: say it again"
    SESSIONS_UNAVAILABLE = "SESSIONS_UNAVAILABLE", "the session store (Redis) cannot be reached"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED", "the work did not finish within its deadline"
    INTERNAL = "INTERNAL", "something broke that the caller cannot fix (the log has the request id)"
    # The llm's upstream (openai engine)
    UPSTREAM_DOWN = "UPSTREAM_DOWN", "the upstream cannot be reached"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT", "the upstream did not answer in time"
    UPSTREAM_REFUSED = "UPSTREAM_REFUSED", "the upstream refused the request"
    UPSTREAM_AUTH = "UPSTREAM_AUTH", "the upstream refused the key"
    UPSTREAM_BAD = "UPSTREAM_BAD", "the upstream's answer cannot be read"
    UPSTREAM_ERROR = "UPSTREAM_ERROR", "the upstream failed"


class OpenAICode(_Code):
    INVALID_REQUEST = "invalid_request", "the body does not validate"
    MODEL_NOT_FOUND = "model_not_found", "a model that is not served (the message names those that are)"
    UNSUPPORTED_N = "unsupported_n", "`n` other than 1"
    BAD_ROLES = "bad_roles", "the last message is neither the user's nor a system message"
    EMPTY_INPUT = "empty_input", "speech `input` is empty"
    NOTHING_TO_SPEAK = "nothing_to_speak", "speech `input` has nothing to say (only punctuation, ...)"
    EMPTY_FILE = "empty_file", "an uploaded file with no bytes"
    NO_AUDIO = "no_audio", "an uploaded file with no audio stream"
    BAD_AUDIO = "bad_audio", "an uploaded file that does not decode as audio"
    EMPTY_AUDIO = "empty_audio", "an uploaded file with no audio samples"
    BAD_SAMPLE_RATE = "bad_sample_rate", "audio at a sample rate the asr cannot take"
    AUDIO_TOO_LONG = "audio_too_long", "audio longer than the asr takes"


class CloseCode(IntEnum):
    meaning: str

    def __new__(cls, value: int, meaning: str) -> CloseCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    NORMAL_CLOSURE = 1000, "the conversation is over: the client's end, or an idle timeout"
    INVALID_PAYLOAD = 1007, "audio that cannot be (a frame of partial samples)"
    POLICY_VIOLATION = 1008, "a refused handshake or config, or a client that broke a limit (the `error` says which)"
    MESSAGE_TOO_BIG = 1009, "a frame over `ws_max_frame_bytes`"
    INTERNAL_ERROR = 1011, "the server failed unexpectedly (the `error` event says what the client may know)"
    SERVICE_RESTART = 1012, "the core is restarting: reconnect now with the same session id"
    TRY_AGAIN_LATER = 1013, "overloaded: come back after the `error` event's `retry_after` seconds"


BEGIN = "<!-- error codes: generated by `make docs` from src/voxstack/codes.py, do not edit -->"
END = "<!-- end of error codes -->"


CLOSE_BEGIN = "<!-- close codes: generated by `make docs` from src/voxstack/codes.py, do not edit -->"
CLOSE_END = "<!-- end of close codes -->"


def render_close() -> str:
    """The table of close codes, between its markers."""
    rows = [f"| {code.value} | {code.meaning} |" for code in CloseCode]
    return "\n".join([CLOSE_BEGIN, "", "| close code | meaning |", "|---|---|", *rows, "", CLOSE_END])


def render() -> str:
    """The table of codes, between its markers."""
    parts = [BEGIN, "", "| code | meaning |", "|---|---|"]
    parts += [f"| `{code.value}` | {code.meaning} |" for code in ErrorCode]
    parts += [
        "",
        "A failed stage adds its own: `{STAGE}_{STATUS}` with the stage (`ASR`, `LLM`, `TTS`) and the "
        "gRPC status it ended with, e.g. `TTS_UNAVAILABLE`, `LLM_DEADLINE_EXCEEDED`, `ASR_RESOURCE_EXHAUSTED`.",
        "",
        "The OpenAI-compatible routes (`error.code`):",
        "",
        "| code | meaning |",
        "|---|---|",
    ]
    parts += [f"| `{code.value}` | {code.meaning} |" for code in OpenAICode]
    parts += ["", END]
    return "\n".join(parts)


def rewrite(text: str) -> str:
    """``text`` with the parts between the markers replaced by ``render()`` and ``render_close()``."""
    for begin, end, table in ((BEGIN, END, render()), (CLOSE_BEGIN, CLOSE_END, render_close())):
        head, found, rest = text.partition(begin)
        _, ended, tail = rest.partition(end)
        if not found or not ended:
            raise ValueError(f"the markers {begin!r} and {end!r} are missing")
        text = head + table + tail
    return text


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    path.write_text(rewrite(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
