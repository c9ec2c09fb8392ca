"""The settings sections of the model services, and what every service shares: where it listens, TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from voxstack.registry import SERVICES

MiB = 1024 * 1024


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

    factory: str = Field(
        "",
        pattern=r"^$|^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="A module:callable serving this service in place of the built-in one (taking the settings, "
        "returning a service for the shared host), e.g. voxstack.testing.fakes.asr:create, the scripted stand-in "
        "tests use; empty = the built-in service.",
    )

    max_message_bytes: int = Field(
        32 * MiB, ge=64 * 1024, le=2**31 - 1, description="Largest request or response, in bytes."
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="HTTP port serving Prometheus metrics at /metrics (on host); 0 = none."
    )
    max_connection_age: float = Field(
        0.0,
        ge=0,
        le=86400,
        description="Seconds after which a client connection is asked to reconnect (calls in flight finish), so "
        "balancing clients spread over replicas that came up since (30 under Compose, Swarm and Kubernetes); "
        "0 = never.",
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
    # 500 ms: pauses of 0.45 s mid-sentence cut the speaker off 10 % of the time (300 ms: always), for a
    # median turn within the noise of 300 ms's, the reply started at the pause (docs/PERFORMANCE.md).
    vad_min_silence_ms: int = Field(500, ge=32, le=10_000, description="Silence that ends an utterance.")
    vad_min_speech_ms: int = Field(120, ge=0, le=10_000, description="Shortest sound counted as speech.")
    vad_pad_ms: int = Field(200, ge=0, le=2000, description="Audio kept before and after speech.")
    partial_interval: float = Field(0.5, ge=0.05, le=60, description="Seconds between interim decodes.")


# Chosen with the assistant bench (bench/assistant_bench.py, docs/PERFORMANCE.md): for the default small model a
# short prompt that names the language, with greedy decoding, answers best and never drifts out of English.
DEFAULT_SYSTEM_PROMPT = "You are a helpful voice assistant. Answer in English, in one short sentence."


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
    temperature: float = Field(0.0, ge=0, le=2, description="Default sampling temperature (0 = greedy).")
    top_p: float = Field(1.0, gt=0, le=1, description="Default nucleus sampling.")
    repeat_penalty: float = Field(
        1.0, ge=1.0, le=2.0, description="Penalty on repeating recent tokens (llama_cpp engine); 1 = none."
    )
    max_tokens: int = Field(
        96, ge=1, le=1_000_000, description="Default reply length limit in tokens (a spoken reply is short)."
    )
    max_tokens_limit: int = Field(1024, ge=1, le=1_000_000, description="Largest max_tokens a request may ask.")
    max_queue: int = Field(4, ge=0, le=10_000, description="Calls that may wait for the model before refusal.")
    max_concurrency: int = Field(
        1, ge=1, le=256, description="Calls run at once (openai engine; for llama.cpp see parallel)."
    )
    parallel: int = Field(
        2,
        ge=1,
        le=16,
        description="llama.cpp contexts, each writing one reply: with 2, a second conversation's reply starts "
        "while the first is still being written. They take turns a token at a time with all `threads`, the reply "
        "that has written least first, so a new turn's first sentence comes before another reply's tail. The "
        "weights are mapped once; each context adds its own cache of context_size tokens.",
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

    @property
    def concurrency(self) -> int:
        """Replies written at once: the upstream's calls, or llama.cpp's contexts."""
        return self.max_concurrency if self.engine == "openai" else self.parallel


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


class TlsSettings(BaseModel):
    """TLS between the services: the gRPC servers serve it, the core and the CLI verify it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    cert_file: Path | None = Field(
        None, description="PEM certificate (with its chain) the gRPC services present; unset = plaintext gRPC."
    )
    key_file: Path | None = Field(None, description="PEM private key of cert_file.")
    ca_file: Path | None = Field(
        None,
        description="PEM CA bundle that clients (the core, the CLI) trust for the services' certificates, and that "
        "signs client certificates when client_auth is on; unset = the system's roots.",
    )
    client_auth: bool = Field(
        False,
        description="Mutual TLS: services accept only clients presenting a certificate signed by ca_file (the core "
        "and the CLI present cert_file).",
    )
    server_name: str = Field(
        "", description="Name checked in the services' certificates; empty = the host of each address."
    )

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: set both or neither")
        if self.client_auth and (self.cert_file is None or self.ca_file is None):
            raise ValueError("client_auth needs cert_file, key_file and ca_file")
        return self
