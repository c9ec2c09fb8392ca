"""The Realtime API's audio formats: ``audio/pcm`` (PCM16 at 24 kHz), ``audio/pcmu`` and ``audio/pcma``
(G.711 mu-law and A-law at 8 kHz), to and from the PCM16 the asr takes and the tts gives.

G.711 is a fixed 8-bit companding of 16-bit samples (ITU-T G.711): decoding is
a table of 256 values; encoding is the standard segment search, done on a whole
chunk at once with numpy.
"""

from __future__ import annotations

import functools

import numpy as np

from voxstack.audio import float_to_pcm16, resample

RATES = {"audio/pcm": 24_000, "audio/pcmu": 8_000, "audio/pcma": 8_000}
_MULAW_BIAS = 0x84 >> 2
_MULAW_CLIP = 8_159


def bytes_per_second(fmt: str) -> int:
    """Bytes of one second of audio in ``fmt`` (mono)."""
    return RATES[fmt] * (2 if fmt == "audio/pcm" else 1)


@functools.cache
def _ulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84 << ((u >> 4) & 7)) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype("<i2")


@functools.cache
def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    mantissa, segment = (a & 0x0F) << 4, (a >> 4) & 7
    magnitude = np.where(segment == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(segment - 1, 0))
    return np.where(a & 0x80, magnitude, -magnitude).astype("<i2")


def _ulaw_encode(samples: np.ndarray) -> np.ndarray:
    # On 14-bit values, as the reference implementation does (so negative values round alike).
    s = samples.astype(np.int32) >> 2
    mask = np.where(s < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(s), _MULAW_CLIP) + _MULAW_BIAS
    segment = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), magnitude)
    value = (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    value = np.where(segment >= 8, 0x7F, value)
    return ((value ^ mask) & 0xFF).astype(np.uint8)


def _alaw_encode(samples: np.ndarray) -> np.ndarray:
    s = samples.astype(np.int32) >> 3
    mask = np.where(s >= 0, 0xD5, 0x55)
    magnitude = np.where(s >= 0, s, -s - 1)
    # Segment: how many of the ends 0x1F, 0x3F, ... 0xFFF the value is above.
    segment = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), magnitude)
    shift = np.where(segment < 2, 1, segment)
    value = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    value = np.where(segment >= 8, 0x7F, value)
    return ((value ^ mask) & 0xFF).astype(np.uint8)


def to_pcm16(data: bytes, fmt: str) -> bytes:
    """Audio in ``fmt`` as PCM16 at the format's rate (an odd byte of PCM is the caller's to refuse)."""
    if fmt == "audio/pcm":
        return data
    table = _ulaw_table() if fmt == "audio/pcmu" else _alaw_table()
    return table[np.frombuffer(data, dtype=np.uint8)].tobytes()


def from_pcm16(pcm16: bytes, rate: int, fmt: str) -> bytes:
    """PCM16 at ``rate`` (the tts's) as audio in ``fmt`` at the format's rate."""
    samples = np.frombuffer(pcm16, dtype="<i2")
    if rate != RATES[fmt]:
        samples = np.frombuffer(
            float_to_pcm16(resample(samples.astype(np.float32) / 32768, rate, RATES[fmt])), dtype="<i2"
        )
    if fmt == "audio/pcm":
        return samples.astype("<i2").tobytes()
    encoded = _ulaw_encode(samples) if fmt == "audio/pcmu" else _alaw_encode(samples)
    return encoded.tobytes()
