"""The core's settings section: where it listens, its limits, authentication and sessions."""

from __future__ import annotations

import logging
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from voxstack.balancing import grpc_target
from voxstack.config.services import MiB, ServiceSettings
from voxstack.models.catalog import DEFAULT_PRESET, LLM_PRESETS
from voxstack.registry import SERVICES

logger = logging.getLogger(__name__)

# The knee `make load` measures on two cores with the default settings (docs/PERFORMANCE.md): the most
# conversations whose first replies stay within twice as slow as one alone; machines with more cores
# raise it to their own knee.
MAX_CONVERSATIONS_DEFAULT = 3

#: The shortest API key accepted: shorter ones can be guessed.
MIN_KEY_CHARS = 16
MIN_SECRET_CHARS = 32

SESSION_STORE_SCHEMES = ("sqlite:///", "redis://", "rediss://", "unix://")


#: Settings renamed, by their former names: still read (with a warning) until a release drops them.
RENAMED = MappingProxyType({"preemptive_reply": "speculative_reply", "preemptive_sentences": "speculative_sentences"})


def _by_preset(name: str) -> str:
    """Each llm preset's value of one of its core settings, for a setting's description."""
    return ", ".join(f"{preset} {getattr(spec, name):g}" for preset, spec in LLM_PRESETS.items())


class CoreSettings(ServiceSettings):
    """The core: the HTTP/WebSocket API, its calls to the services, and sessions."""

    port: int = Field(SERVICES["core"].default_port, ge=0, le=65535)
    asr_address: str = Field(
        "",
        description="Where asr is: HOST:PORT, a list HOST:PORT,HOST:PORT or dns:///NAME:PORT (several replicas, "
        "balanced per call, see docs/SCALING.md); empty = from the asr section.",
    )
    llm_address: str = Field(
        "",
        description="Where llm is: HOST:PORT, a list HOST:PORT,HOST:PORT or dns:///NAME:PORT (several replicas, "
        "balanced per call, see docs/SCALING.md); empty = from the llm section.",
    )
    tts_address: str = Field(
        "",
        description="Where tts is: HOST:PORT, a list HOST:PORT,HOST:PORT or dns:///NAME:PORT (several replicas, "
        "balanced per call, see docs/SCALING.md); empty = from the tts section.",
    )
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
    restart_wait_seconds: float = Field(
        0.0,
        ge=0,
        le=3600,
        description="How long a call refused after every retry waits for its service to come back (whoever "
        "restarts it), within the call's deadline. 0 = not at all. Where unset, `voxstack up`/`dev` make it the "
        "longest (they bring every service back); Compose sets 20.",
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
    ws_token_secret: SecretStr | None = Field(
        None,
        description="Secret that signs WebSocket tokens (at least 32 characters); unset = a random one kept in "
        "the session store, shared by every core on that store.",
    )
    ws_token_seconds: float = Field(
        60, gt=0, le=86_400, description="How long a WebSocket token from POST /v1/auth/ws-token stays valid."
    )
    api_docs: bool | None = Field(
        None, description="Serve the OpenAPI schema and docs pages (/docs, /redoc, /openapi.json); unset = in dev only."
    )
    console: bool | None = Field(
        None,
        description="Serve the voice console page at /console (talk to the stack in a browser); unset = in dev only.",
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
        "ws_burst_seconds; a faster sender gets the error AUDIO_TOO_FAST and the socket closes (1008).",
    )
    ws_burst_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Audio a WebSocket may send at once before ws_realtime_factor applies.",
    )
    max_connections: int = Field(
        4096,
        ge=1,
        le=1_000_000,
        description="Open connections at most (kept below the file-descriptor limit); at the cap the longest-idle "
        "connection is closed for a new one, and a new one is refused only when all are busy.",
    )
    header_timeout: float = Field(
        10.0, gt=0, le=3600, description="Seconds a connection has to send a complete request head."
    )
    keepalive_timeout: float = Field(
        5.0, gt=0, le=3600, description="Seconds an idle keep-alive connection stays open between requests."
    )
    body_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds a request body may stop arriving before the request gets 408."
    )
    rate_limit: float = Field(
        0.0,
        ge=0,
        le=1_000_000,
        description="Requests per second each client (its API key, else its address) may make, with bursts of "
        "rate_burst; beyond, 429 with Retry-After. 0 = no limit.",
    )
    rate_burst: int = Field(20, ge=1, le=1_000_000, description="Requests a client may make at once under rate_limit.")
    client_concurrency: int = Field(
        0, ge=0, le=1_000_000, description="Requests each client may have in flight; beyond, 429. 0 = no limit."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) whose pages may call the API and open the WebSocket; a JSON "
        "list. Requests from any other page are refused with 403 (same-origin pages always pass).",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description='Host header values accepted (e.g. ["voice.example.com"], "*.example.com"); empty = any. '
        "Guards against DNS rebinding.",
    )
    tls_cert_file: Path | None = Field(None, description="PEM certificate for HTTPS/WSS; unset = plain HTTP.")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    ws_idle_seconds: float = Field(
        300.0, gt=0, le=86_400, description="A WebSocket that sends nothing for this long is closed."
    )
    ws_send_timeout: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds a reply may wait for a WebSocket client that stopped reading it; then the "
        "conversation is dropped and its llm and tts work stops (a client that does not read holds no slot).",
    )
    ws_max_frame_rate: float = Field(
        250.0,
        gt=0,
        le=100_000,
        description="WebSocket messages per second a client may send (after a burst of two seconds' worth); "
        "faster clients are refused (1008).",
    )
    metrics: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    metrics_public: bool = Field(
        False, description="Serve /metrics without an API key (when keys are set), like the health probes."
    )
    voice: str = Field("", description="tts voice for replies; empty = the tts default.")
    first_clause: bool = Field(
        True,
        description="Speak a reply's first clause (up to a comma, semicolon or colon) as soon as it is written, "
        "not its first sentence: the first audio comes sooner.",
    )
    first_phrase_words: int = Field(
        3,
        ge=0,
        le=50,
        description="With first_clause, a reply's first piece may end sooner still: at its first phrase break "
        "(a function word after a content word: 'There are seven days | in a week') after at least this many "
        "words, synthesised with a comma as a clause inside a sentence ends. 0 = off.",
    )
    speculative_reply: bool = Field(
        True,
        description="On the WebSocket, start the reply at the asr's speculative transcript (the speaker's first "
        "pause) and hold its audio until the utterance's end is confirmed; dropped if the speaker goes on, redone "
        "if the final transcript differs.",
    )
    join_unheard_turns: bool = Field(
        True,
        description="On the WebSocket, when the speaker goes on before any of a reply's audio was sent, or too soon "
        "after it to have reacted to it, withdraw that turn (barge_in for it) and answer what they said before and "
        "after the pause as one question.",
    )
    turn_words_threshold: float = Field(
        LLM_PRESETS[DEFAULT_PRESET].turn_words_threshold,
        ge=0,
        lt=1,
        description="On the WebSocket, a turn the asr ended (by its turn model or by silence) is taken at once "
        "only when the llm judges its words a whole turn with at least this probability ('What is the best way' is "
        "not); otherwise it waits for unfinished_silence_ms of silence, and a speaker who goes on meanwhile is heard "
        f"as one question. 0 = take it at once. Unset: the llm preset's ({_by_preset('turn_words_threshold')}).",
    )
    turn_words_end_threshold: float = Field(
        LLM_PRESETS[DEFAULT_PRESET].turn_words_end_threshold,
        ge=0,
        le=1,
        description="On the WebSocket with speculative_reply, and in a Realtime session's semantic_vad: at a pause "
        "the asr's turn model did not call the end, "
        "the turn ends at once (rule 'words') when the llm judges the words so far a whole turn with at least this "
        "probability, instead of at vad_min_silence_ms: a finished question in a voice that sounds unfinished is "
        "not kept waiting. 0 = off (only the sound ends a turn). Unset: the llm preset's "
        f"({_by_preset('turn_words_end_threshold')}).",
    )
    unfinished_silence_ms: int = Field(
        1500,
        ge=0,
        le=30_000,
        description="Silence after which a turn whose words sound unfinished (turn_words_threshold) is taken "
        "anyway: the speaker stopped after all.",
    )
    speculative_sentences: int = Field(
        1,
        ge=1,
        le=100,
        description="Sentences (or first clauses) of a speculative reply synthesised before the utterance's end is "
        "confirmed: bounds the tts work wasted when the speaker goes on.",
    )
    max_conversations: int = Field(
        MAX_CONVERSATIONS_DEFAULT,
        ge=0,
        le=100_000,
        description="WebSocket conversations open at once; past it a new one is refused at once (error "
        "OVERLOADED with retry_after, close 1013) rather than answered slowly. 0 = no limit. Size it with "
        "`make load` (the knee): docs/PERFORMANCE.md.",
    )
    ws_config_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds a new WebSocket has to send its config; then it is closed (1008, CONFIG_TIMEOUT), "
        "so connections that never start hold no conversation slot.",
    )
    key_conversations: int = Field(
        2,
        ge=0,
        le=100_000,
        description="WebSocket conversations one API key may hold at once (with keys only); past it a new one is "
        "refused (KEY_CONVERSATIONS, close 1013). 0 = no limit.",
    )
    key_text_turns_per_minute: float = Field(
        60.0,
        ge=0,
        le=1_000_000,
        description="Typed WebSocket turns one API key may send a minute, in bursts of ten seconds' worth (with keys "
        "only); past it a turn is dropped with the error TEXT_TURNS_LIMITED. 0 = no limit.",
    )
    key_llm_calls: int = Field(
        2,
        ge=0,
        le=100_000,
        description="llm calls one API key may have open at once, on every route (with keys only); past it a call "
        "is refused (429, KEY_LLM_BUSY), so one key cannot fill the llm's queue. 0 = no limit.",
    )
    session_max_turns: int = Field(
        10,
        ge=0,
        le=1000,
        description="Turns of history kept per session at most; past it the oldest go until half are left "
        "(in steps, so the llm's cached prompt stays valid for several turns).",
    )
    session_max_chars: int = Field(
        8000, ge=0, le=1_000_000, description="Characters of history kept per session at most (trimmed the same way)."
    )
    session_idle_seconds: float = Field(900.0, gt=0, le=86_400 * 30, description="Idle time before a session ends.")
    max_sessions: int = Field(1000, ge=1, le=1_000_000, description="Sessions kept at once (least recent dropped).")
    record_turns: bool | None = Field(
        None,
        description="Record each WebSocket turn (its audio or text, history, settings, transcript, reply and its "
        "audio, timings) for `voxstack replay`; unset = in dev only.",
    )
    recordings_dir: Path | None = Field(
        None, description="Where turns are recorded; unset = recordings/ in the state directory."
    )
    recordings_max_count: int = Field(
        200, ge=1, le=1_000_000, description="Recorded turns kept at most (the oldest go first)."
    )
    recordings_max_bytes: int = Field(
        256 * MiB, ge=MiB, le=2**40, description="Bytes of recorded turns kept at most (the oldest go first)."
    )
    session_store: str = Field(
        "",
        description="Where conversation history lives: memory; sqlite (a file in the state directory) or "
        "sqlite:///PATH; redis://HOST:PORT/DB (rediss:// for TLS, unix:///PATH), shared by several cores. "
        "Empty = sqlite in dev (history outlives reloads), memory in prod.",
    )

    @property
    def words_judged(self) -> bool:
        """Whether a pause's words are judged by the llm: to hold a turn, or to end one."""
        return self.turn_words_threshold > 0 or self.turn_words_end_threshold > 0

    @property
    def base_url(self) -> str:
        """Where a client on this machine reaches the core: http or https, loopback for a wildcard bind."""
        return f"{'https' if self.tls_cert_file else 'http'}://{self.connect_address}"

    @field_validator("asr_address", "llm_address", "tts_address")
    @classmethod
    def _backend(cls, value: str) -> str:
        if value.strip():
            grpc_target(value)  # raises TargetError (a ValueError) naming what is wrong
        return value.strip()

    @field_validator("api_keys")
    @classmethod
    def _strong_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for number, key in enumerate(keys, 1):
            value = key.get_secret_value()
            if len(value.strip()) < MIN_KEY_CHARS or value != value.strip():
                raise ValueError(
                    f"key {number} of {len(keys)} is too weak: a key has at least {MIN_KEY_CHARS} characters and no "
                    "spaces around it (make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
                )
        return keys

    @field_validator("ws_token_secret")
    @classmethod
    def _strong_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value().strip()) < MIN_SECRET_CHARS:
            raise ValueError(f"a token secret has at least {MIN_SECRET_CHARS} characters")
        return secret

    @field_validator("session_store")
    @classmethod
    def _store(cls, value: str) -> str:
        if value in ("", "memory", "sqlite") or value.startswith(SESSION_STORE_SCHEMES):
            return value
        raise ValueError(
            f"{value!r} is not a session store: use memory, sqlite, sqlite:///PATH, redis://HOST:PORT/DB, "
            "rediss://... or unix:///PATH"
        )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """Settings under their former names still work, with a warning naming the new one."""
        if not isinstance(data, dict) or not RENAMED.keys() & data.keys():
            return data
        data = dict(data)
        for old, new in RENAMED.items():
            if old in data:
                logger.warning(
                    "setting core.%s (VOXSTACK_CORE__%s) is now core.%s (VOXSTACK_CORE__%s): the old name will go",
                    old, old.upper(), new, new.upper(),
                )  # fmt: skip
                value = data.pop(old)
                data.setdefault(new, value)
        return data

    @model_validator(mode="after")
    def _words_thresholds(self) -> CoreSettings:
        if 0 < self.turn_words_end_threshold < self.turn_words_threshold:
            raise ValueError(
                f"turn_words_end_threshold ({self.turn_words_end_threshold:g}) is under turn_words_threshold "
                f"({self.turn_words_threshold:g}): words that end a turn must be words that do not hold one"
            )
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> CoreSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        return self
