"""Settings: one model fed by defaults, a .env file, the environment and CLI flags.

Precedence, lowest first: built-in defaults (some depend on ``mode``), ``.env``,
environment variables (``VOXSTACK_`` prefix, ``__`` between nested sections,
e.g. ``VOXSTACK_ASR__PORT``), then keyword overrides such as CLI flags.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from voxstack.models import default_models_dir
from voxstack.registry import SERVICES
from voxstack.runstate import default_state_dir

ENV_PREFIX = "VOXSTACK_"
ENV_NESTED_DELIMITER = "__"
MiB = 1024 * 1024


class Mode(str, Enum):
    DEV = "dev"
    PROD = "prod"


class LogFormat(str, Enum):
    JSON = "json"
    CONSOLE = "console"


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# Defaults that follow the mode; each can still be set on its own.
MODE_DEFAULTS: MappingProxyType[Mode, MappingProxyType[str, Any]] = MappingProxyType(
    {
        Mode.PROD: MappingProxyType(
            {
                "log_level": "INFO",
                "log_format": LogFormat.JSON,
                "error_detail": False,
                "traceback_locals": False,
                "health_interval": 30.0,
                "reuse_port": False,
                "reflection": False,
            }
        ),
        Mode.DEV: MappingProxyType(
            {
                "log_level": "DEBUG",
                "log_format": LogFormat.CONSOLE,
                "error_detail": True,
                "traceback_locals": True,
                "health_interval": 15.0,
                "reflection": True,
                # The dev supervisor starts a new instance beside the old one.
                "reuse_port": True,
            }
        ),
    }
)


class ServiceSettings(BaseModel):
    """Where one service listens."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = Field("127.0.0.1", min_length=1, description="Interface to listen on.")
    port: int = Field(0, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    nice: int = Field(0, ge=0, le=19, description="CPU niceness the service runs at (higher yields the CPU sooner).")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connect_address(self) -> str:
        """Where a client on this machine reaches it: a wildcard bind becomes loopback."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{host}:{self.port}"


class GrpcServiceSettings(ServiceSettings):
    """Where one gRPC service listens, and how big its messages may be."""

    max_message_bytes: int = Field(
        32 * MiB, ge=64 * 1024, le=2**31 - 1, description="Largest request or response, in bytes."
    )


class AsrSettings(GrpcServiceSettings):
    """The asr service: speech to text with faster-whisper."""

    port: int = Field(SERVICES["asr"].default_port, ge=0, le=65535)
    model: Path | None = Field(
        None, description="A faster-whisper model folder; unset = the default Whisper base in models_dir."
    )
    device: Literal["cpu", "cuda", "auto"] = Field("cpu", description="cpu, cuda or auto.")
    compute_type: str = Field("int8", min_length=1, description="CTranslate2 compute type: int8, float16, ...")
    cpu_threads: int = Field(0, ge=0, le=256, description="Threads of the audio encoder per decode; 0 = one per core.")
    decoder_threads: int = Field(
        1,
        ge=0,
        le=256,
        description="Threads of the text decoder per decode on cpu; 0 = cpu_threads. Its per-token steps are too "
        "small to share between threads (see docs/PERFORMANCE.md); 1 runs it on a second model instance.",
    )
    language: str = Field(
        "en",
        description="ISO 639-1 code used when a request names none; auto = detect (costs a decode pass).",
    )
    beam_size: int = Field(1, ge=1, le=20, description="Beam width; 1 = greedy (fastest).")
    vad_filter: bool = Field(True, description="Drop silence before decoding in Recognize.")
    fit_window: bool = Field(
        True,
        description="Encode the audio plus fit_margin_seconds instead of Whisper's fixed 30 s window "
        "(several times faster on short audio; a decode that loops is redone with the full window).",
    )
    fit_margin_seconds: float = Field(
        10.0,
        ge=0.5,
        le=30,
        description="Quiet the fitted window keeps after the audio: less is faster but less accurate "
        "(see docs/PERFORMANCE.md).",
    )
    max_concurrency: int = Field(1, ge=1, le=32, description="Decodes run in parallel.")
    max_queue: int = Field(16, ge=0, le=10_000, description="Calls waiting for a decode slot before refusing.")
    max_audio_seconds: float = Field(120.0, gt=0, le=3600, description="Longest audio accepted.")
    vad_threshold: float = Field(0.5, gt=0, lt=1, description="Speech probability that starts speech.")
    vad_min_silence_ms: int = Field(300, ge=32, le=10_000, description="Silence that ends an utterance.")
    vad_min_speech_ms: int = Field(120, ge=0, le=10_000, description="Shortest sound counted as speech.")
    vad_pad_ms: int = Field(200, ge=0, le=2000, description="Audio kept before and after speech.")
    partial_interval: float = Field(0.5, ge=0.05, le=60, description="Seconds between interim decodes.")


DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your answers are spoken aloud, so reply in one to three short, "
    "plain sentences: no lists, no markdown, no emoji, and numbers written as a person would say them."
)


class LlmSettings(GrpcServiceSettings):
    """The llm service: replies from llama.cpp or an OpenAI-compatible upstream."""

    port: int = Field(SERVICES["llm"].default_port, ge=0, le=65535)
    engine: Literal["llama_cpp", "openai"] = Field(
        "llama_cpp", description="llama_cpp (a local GGUF model) or openai (any OpenAI-compatible server)."
    )
    model: Path | None = Field(None, description="A GGUF file; unset = the default SmolLM2 in models_dir.")
    context_size: int = Field(2048, ge=128, le=1_048_576, description="Context window in tokens.")
    threads: int = Field(0, ge=0, le=256, description="CPU threads; 0 = one per core.")
    nice: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU niceness: the llm writes ahead of the speech it feeds, so tts and asr should win the CPU "
        "when they contend.",
    )
    gpu_layers: int = Field(0, ge=-1, le=10_000, description="Layers offloaded to a GPU (-1 = all).")
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, description="Used when a request has no system message.")
    temperature: float = Field(0.7, ge=0, le=2, description="Default sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Default nucleus sampling.")
    max_tokens: int = Field(256, ge=1, le=1_000_000, description="Default reply length limit in tokens.")
    max_tokens_limit: int = Field(1024, ge=1, le=1_000_000, description="Largest max_tokens a request may ask.")
    max_queue: int = Field(4, ge=0, le=10_000, description="Calls that may wait for the model before refusal.")
    max_concurrency: int = Field(
        1, ge=1, le=256, description="Calls run at once (openai engine; llama.cpp always runs one)."
    )
    upstream_url: str = Field(
        "",
        description="Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 (openai engine).",
    )
    upstream_model: str = Field("", description="Model name sent upstream (openai engine).")
    upstream_api_key: SecretStr | None = Field(
        None, description="Bearer token for the upstream; unset = $OPENAI_API_KEY if set."
    )
    upstream_timeout: float = Field(60.0, gt=0, le=3600, description="Seconds to wait for the upstream.")


class TtsSettings(GrpcServiceSettings):
    """The tts service: speech from piper voices."""

    port: int = Field(SERVICES["tts"].default_port, ge=0, le=65535)
    voices: list[Path] = Field(
        default_factory=list,
        description="piper voices (.onnx, each with its .onnx.json beside it); empty = the default voice.",
    )
    default_voice: str = Field("", description="Voice used when a request names none; empty = the first.")
    max_text_chars: int = Field(5000, ge=1, le=1_000_000, description="Longest text accepted.")
    max_sentence_chars: int = Field(250, ge=20, le=10_000, description="Longer sentences are cut at a pause.")
    sentence_silence: float = Field(0.2, ge=0, le=5, description="Seconds of silence between sentences.")
    max_concurrency: int = Field(2, ge=1, le=32, description="Syntheses that run at once.")
    max_queue: int = Field(16, ge=0, le=10_000, description="Calls that may wait for a slot before refusal.")


class CoreSettings(ServiceSettings):
    """The core: the HTTP/WebSocket API, its calls to the services, and sessions."""

    port: int = Field(SERVICES["core"].default_port, ge=0, le=65535)
    asr_address: str = Field("", description="HOST:PORT of asr; empty = from the asr section.")
    llm_address: str = Field("", description="HOST:PORT of llm; empty = from the llm section.")
    tts_address: str = Field("", description="HOST:PORT of tts; empty = from the tts section.")
    asr_timeout: float = Field(30.0, gt=0, le=3600, description="Deadline of an asr call, in seconds.")
    llm_timeout: float = Field(60.0, gt=0, le=3600, description="Deadline of an llm call, in seconds.")
    tts_timeout: float = Field(30.0, gt=0, le=3600, description="Deadline of a tts call, in seconds.")
    retries: int = Field(
        5,
        ge=0,
        le=10,
        description="Retries of a call refused before any reply (UNAVAILABLE, or CANCELLED by a stopping "
        "instance): the first at once, then after 25 ms, 50 ms, 100 ms, ...",
    )
    max_upload_bytes: int = Field(25 * MiB, ge=1024, le=2**31 - 1, description="Largest audio body accepted.")
    max_json_bytes: int = Field(
        1 * MiB, ge=1024, le=2**31 - 1, description="Largest body of any other kind (JSON, forms) accepted."
    )
    max_text_chars: int = Field(
        4000,
        ge=1,
        le=1_000_000,
        description="Longest text a caller may send (a chat message, a system prompt, text "
        "to speak), checked before any other work.",
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys callers must present (Authorization: Bearer KEY, or X-API-Key) on every route but "
        "/livez and /healthz; a JSON list. Empty (and no api_keys_file) = no authentication.",
    )
    api_keys_file: Path | None = Field(
        None, description="A file of keys stored hashed: one `sha256:HEX` line each (`voxstack config --hash-key`)."
    )
    allow_anonymous: bool = Field(
        False, description="Let a prod core without keys listen on a non-loopback address (behind your own auth)."
    )
    ws_token_seconds: float = Field(
        60, gt=0, le=86_400, description="How long a WebSocket token from POST /v1/auth/ws-token stays valid."
    )
    api_docs: bool | None = Field(
        None, description="Serve the OpenAPI schema and docs pages (/docs, /redoc, /openapi.json); unset = in dev only."
    )
    ws_max_frame_bytes: int = Field(
        256 * 1024,
        ge=1024,
        le=64 * MiB,
        description="Largest WebSocket message accepted (a larger one closes the socket with 1009).",
    )
    ws_queue_chunks: int = Field(
        64,
        ge=1,
        le=100_000,
        description="Audio frames a WebSocket may have waiting for the asr; beyond that the "
        "core stops reading the socket (backpressure).",
    )
    ws_realtime_factor: float = Field(
        4.0,
        gt=0,
        le=1000,
        description="How much faster than real time a WebSocket may send audio once past "
        "ws_burst_seconds; faster senders are slowed down, not refused.",
    )
    ws_burst_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Audio a WebSocket may send at once before ws_realtime_factor applies.",
    )
    voice: str = Field("", description="tts voice for replies; empty = the tts default.")
    first_clause: bool = Field(
        True,
        description="Speak a reply's first clause (up to a comma, semicolon or colon) as soon as it is written, "
        "not its first sentence: the first audio comes sooner.",
    )
    session_max_turns: int = Field(10, ge=0, le=1000, description="Turns of history kept per session.")
    session_max_chars: int = Field(8000, ge=0, le=1_000_000, description="Characters of history kept per session.")
    session_idle_seconds: float = Field(900.0, gt=0, le=86_400 * 30, description="Idle time before a session ends.")
    max_sessions: int = Field(1000, ge=1, le=1_000_000, description="Sessions kept at once (least recent dropped).")


class Settings(BaseSettings):
    """Everything configurable. Fields set to mode-dependent defaults are resolved on load."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        validate_default=True,
    )

    mode: Mode = Field(Mode.PROD, description="dev or prod: chooses the defaults below.")
    log_level: LogLevel = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    log_format: LogFormat = Field(LogFormat.JSON, description="json (one object a line) or console.")
    error_detail: bool = Field(False, description="Send tracebacks to callers in error details.")
    traceback_locals: bool = Field(False, description="Show local variables in logged tracebacks.")
    health_interval: float = Field(30.0, gt=0, le=3600, description="Seconds between health checks.")
    reuse_port: bool = Field(False, description="Let a second server bind the same port (SO_REUSEPORT).")
    reflection: bool = Field(
        False, description="Serve gRPC server reflection (what grpcurl lists); it tells callers the whole API."
    )
    grace_period: float = Field(10.0, ge=0, le=3600, description="Seconds in-flight calls get to finish at shutdown.")
    models_dir: Path = Field(
        default_factory=default_models_dir, description="Where `voxstack models pull` puts models."
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Run-state record, lock, control sockets and logs of `voxstack up`/`dev`.",
    )
    asr: AsrSettings = AsrSettings()
    llm: LlmSettings = LlmSettings()
    tts: TtsSettings = TtsSettings()
    core: CoreSettings = CoreSettings()

    @model_validator(mode="before")
    @classmethod
    def _fill_mode_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        try:
            mode = Mode(_normalise_mode(data.get("mode", Mode.PROD)))
        except ValueError:
            return data  # the field validator reports the bad mode
        return {**MODE_DEFAULTS[mode], **{k: v for k, v in data.items() if v is not None}}

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_any_case(cls, value: Any) -> Any:
        return _normalise_mode(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def backend_address(self, name: str) -> str:
        """Where the core reaches a model service: core.NAME_address, else that service's own address."""
        explicit = getattr(self.core, f"{name}_address")
        if explicit:
            return explicit
        return self.service(name).connect_address

    def service(self, name: str) -> ServiceSettings:
        """The section of one service by name (asr, llm, tts, core)."""
        section = getattr(self, name, None)
        if not isinstance(section, ServiceSettings):
            raise KeyError(name)
        return section


def _normalise_mode(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class SettingsError(ValueError):
    """Invalid settings; the message has one line per problem, ready to show."""


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable that sets the field at ``loc``."""
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part).upper() for part in loc)


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown setting {env_name(loc)} ({dotted})")
            continue
        lines.append(f"invalid setting {env_name(loc)} ({dotted}) = {err['input']!r}: {err['msg']}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings; ``overrides`` (e.g. CLI flags) win over env and .env.

    Nested sections take dicts, e.g. ``asr={"port": 6000}``; ``None`` values are
    ignored so unset CLI flags do not mask the environment.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc)) from None
