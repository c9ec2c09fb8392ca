"""The ``wyoming`` settings section: where ``voxstack wyoming`` serves Home Assistant's protocol, and its limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from voxstack.config.services import MiB

# Home Assistant's and the Rhasspy servers' customary ports.
ASR_PORT = 10300
TTS_PORT = 10200


class WyomingSettings(BaseModel):
    """Wyoming servers for speech to text and text to speech, calling the asr and tts services."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    asr_uri: str = Field(
        f"tcp://127.0.0.1:{ASR_PORT}",
        description="Where the speech-to-text server listens (tcp://HOST:PORT, unix://PATH or stdio://); "
        "empty = off. Wyoming has no authentication: listen beyond loopback only on a trusted network.",
    )
    tts_uri: str = Field(
        f"tcp://127.0.0.1:{TTS_PORT}",
        description="Where the text-to-speech server listens (as asr_uri); empty = off.",
    )
    max_connections: int = Field(
        64, ge=1, le=10_000, description="Open connections per server; one more gets an error event and is closed."
    )
    max_event_bytes: int = Field(
        1 * MiB,
        ge=4096,
        le=64 * MiB,
        description="Largest event (header, data and payload together); a bigger one gets an error event and "
        "the connection is closed.",
    )
    idle_seconds: float = Field(
        300.0, gt=0, le=86_400, description="A connection that sends no event for this long is closed."
    )
    samples_per_chunk: int = Field(
        1024, ge=64, le=48_000, description="Samples in each audio-chunk event of synthesized speech."
    )

    @field_validator("asr_uri", "tts_uri")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("tcp://", "unix://", "stdio://")):
            raise ValueError("use tcp://HOST:PORT, unix://PATH, stdio:// or empty (off)")
        return value
