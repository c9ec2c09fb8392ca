"""The settings sections of the model services, and what every service shares: where it listens, TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from voxstack.models.catalog import DEFAULT_PRESET, LLM_PRESETS, TOOL_INSTRUCTIONS, LlmPreset, PresetName
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
    turn_detection: Literal["model", "silence"] = Field(
        "model",
        description="What ends a turn: model (after turn_silence_ms the turn model is asked whether the speaker "
        "has finished; if not, vad_min_silence_ms ends it) or silence (vad_min_silence_ms alone; 500 suits it).",
    )
    turn_model: Path | None = Field(
        None, description="The turn model, an ONNX file (Smart Turn v3); unset = the default in models_dir."
    )
    # 200 / 0.95 / 700 ms, from the endpoint bench (docs/PERFORMANCE.md): a finished question ends about 0.25 s
    # after its last word, a third of 600 ms hesitations are cut off (500 ms of silence alone: 0.52 s, all).
    turn_silence_ms: int = Field(
        200, ge=32, le=10_000, description="Silence after which the turn model is asked (turn_detection=model)."
    )
    turn_threshold: float = Field(
        0.95, gt=0, lt=1, description="The turn model's probability of 'finished' that ends the turn at once."
    )
    vad_min_silence_ms: int = Field(
        700,
        ge=32,
        le=10_000,
        description="Silence that ends an utterance whatever the turn model says (with turn_detection=silence, the "
        "only rule).",
    )
    vad_min_speech_ms: int = Field(120, ge=0, le=10_000, description="Shortest sound counted as speech.")
    vad_pad_ms: int = Field(200, ge=0, le=2000, description="Audio kept before and after speech.")
    partial_interval: float = Field(0.5, ge=0.05, le=60, description="Seconds between interim decodes.")

    @model_validator(mode="after")
    def _turn_silences(self) -> AsrSettings:
        if self.turn_detection == "model" and self.turn_silence_ms >= self.vad_min_silence_ms:
            raise ValueError(
                f"asr.turn_silence_ms ({self.turn_silence_ms}) must be shorter than asr.vad_min_silence_ms "
                f"({self.vad_min_silence_ms}): the turn model is asked before silence alone ends the turn"
            )
        return self


_DEFAULT_LLM = LLM_PRESETS[DEFAULT_PRESET]


class LlmSettings(GrpcServiceSettings):
    """The llm service: replies from llama.cpp or an OpenAI-compatible upstream."""

    port: int = Field(SERVICES["llm"].default_port, ge=0, le=65535)
    engine: Literal["llama_cpp", "openai"] = Field(
        "llama_cpp", description="llama_cpp (a local GGUF model) or openai (any OpenAI-compatible server)."
    )
    preset: PresetName = Field(
        DEFAULT_PRESET,
        description="The model, system prompt and sampling the llm starts from (docs/MODELS.md): tiny "
        "(SmolLM2-135M: fastest, wrong one time in three), small (Qwen2.5-Coder-0.5B: wrong one time in four), "
        "quality (Qwen2.5-Coder-1.5B: right nine times in ten, about 0.2 s slower to the first reply audio than "
        "small); a setting given explicitly wins over the preset's. `voxstack models pull llm --preset NAME` "
        "fetches its model.",
    )
    model: Path | None = Field(None, description="A GGUF file; unset = the preset's model in models_dir.")
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
    # The next four default to the preset's values (see _preset_defaults); those shown are the default preset's.
    system_prompt: str = Field(
        _DEFAULT_LLM.system_prompt, description="Used when a request has no system message; default: the preset's."
    )
    tool_call_grounding: bool = Field(
        True,
        description="Drop a call (llama.cpp engine, tool choice auto) whose arguments appear nowhere in the "
        "conversation or the tool's schema, and answer in words instead: small models call an offered function for "
        "requests it has nothing to do with, making its arguments up.",
    )
    tool_instructions: str = Field(
        TOOL_INSTRUCTIONS,
        max_length=2000,
        description="Added to the system message of a request that offers tools (llama.cpp engine): when to "
        "call one. The default is bench/tools_bench.py's choice; empty: none.",
    )
    temperature: float = Field(
        _DEFAULT_LLM.temperature, ge=0, le=2, description="Default sampling temperature (0 = greedy); the preset's."
    )
    top_p: float = Field(_DEFAULT_LLM.top_p, gt=0, le=1, description="Default nucleus sampling; the preset's.")
    repeat_penalty: float = Field(
        _DEFAULT_LLM.repeat_penalty,
        ge=1.0,
        le=2.0,
        description="Penalty on repeating recent tokens (llama_cpp engine); 1 = none; the preset's.",
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
        3,
        ge=1,
        le=16,
        description="Replies llama.cpp writes at once, as many as the core's max_conversations by default: a "
        "second conversation's reply starts while the first is still being written. They are written together, "
        "a token of each per step of the model (one step costs little more than a step for one), a new reply's "
        "prompt in the same steps; a reply far ahead of a new one waits for it. Each adds a cache of context_size "
        "tokens.",
    )
    draft_tokens: int = Field(
        3,
        ge=0,
        le=16,
        description="A reply written alone checks this many drafted tokens with each of its own in one step "
        "(llama_cpp engine): what followed its latest words where they appear earlier in the prompt or the "
        "reply, as a spoken answer repeats the question's words. The reply is the same (but where two tokens nearly "
        "tie), in fewer steps. 0 = off.",
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

    @model_validator(mode="before")
    @classmethod
    def _preset_defaults(cls, data: object) -> object:
        """Settings the user did not give come from the preset (an unknown preset fails its own field)."""
        if isinstance(data, dict):
            preset = LLM_PRESETS.get(data.get("preset", DEFAULT_PRESET))
            if preset is not None:
                return {**preset.settings(), **data}
        return data

    @property
    def llm_preset(self) -> LlmPreset:
        return LLM_PRESETS[self.preset]

    @property
    def concurrency(self) -> int:
        """Replies written at once: the upstream's calls, or llama.cpp's slots."""
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
