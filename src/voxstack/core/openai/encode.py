"""Audio encoders for streamed speech: PCM16 in, a file format out, piece by piece as sentences come.

``wav`` starts with a header whose sizes say "unknown length" (players and
decoders accept it for streams); ``pcm`` is raw 16-bit mono. The compressed
formats go through PyAV (FFmpeg): ``mp3`` (LAME), ``opus`` (in Ogg), ``aac``
(ADTS) and ``flac``; each ``feed`` returns the bytes the muxer has written so
far, so a client can start playing before the last sentence is synthesised.
"""

from __future__ import annotations

import io
import struct
from typing import Any, Literal

import numpy as np

Format = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
MEDIA_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
# Container and codec in FFmpeg's names.
_PYAV: dict[str, tuple[str, str]] = {
    "mp3": ("mp3", "libmp3lame"),
    "opus": ("ogg", "libopus"),
    "aac": ("adts", "aac"),
    "flac": ("flac", "flac"),
}
#: The rate speech is made at for each format: OpenAI's pcm is 24 kHz; Opus takes 48, 24, 16, 12 or 8 kHz.
RATES: dict[str, int] = {"pcm": 24000, "opus": 24000}


class _Sink(io.RawIOBase):
    """A write-only file that keeps what was written until it is taken."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return len(b)

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


def streaming_wav_header(rate: int) -> bytes:
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


class Encoder:
    """PCM16 mono at ``rate`` in; ``fmt`` out, as it is ready."""

    def __init__(self, fmt: Format, rate: int) -> None:
        self.fmt = fmt
        self.rate = rate
        self.started = False
        self.container: Any = None
        if fmt in _PYAV:
            import av

            container_format, codec = _PYAV[fmt]
            self.sink = _Sink()
            self.container = av.open(self.sink, mode="w", format=container_format)
            self.stream = self.container.add_stream(codec, rate=rate)
            self.stream.layout = "mono"

    def feed(self, pcm16: bytes) -> bytes:
        if self.container is None:
            head = b"" if self.started or self.fmt != "wav" else streaming_wav_header(self.rate)
            self.started = True
            return head + pcm16
        import av

        samples = np.frombuffer(pcm16, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.rate
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        return self.sink.take()

    def finish(self) -> bytes:
        if self.container is None:
            return b"" if self.started or self.fmt != "wav" else streaming_wav_header(self.rate)
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        return self.sink.take()
