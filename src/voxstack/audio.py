"""Audio in and out: decode and validate PCM16/WAV, resample, encode.

Shared by asr (input), tts (output) and core (both). Every problem with the
bytes a client sent becomes an ``InvalidInput`` or ``TooLarge`` whose message
names it.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

import numpy as np
import soxr

from voxstack.codes import ErrorCode
from voxstack.errors import InvalidInput, TooLarge
from voxstack.v1 import common_pb2

PCM16 = common_pb2.AUDIO_ENCODING_PCM16
WAV = common_pb2.AUDIO_ENCODING_WAV
MIN_RATE = 4_000
MAX_RATE = 192_000
MAX_CHANNELS = 8


@dataclass(frozen=True)
class Audio:
    """Decoded audio: float32 samples in [-1, 1], shape (frames, channels)."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / self.sample_rate

    def mono(self) -> np.ndarray:
        """1-D float32 samples, channels averaged."""
        if self.channels == 1:
            return self.samples[:, 0]
        return self.samples.mean(axis=1, dtype=np.float32)


def encoding_name(encoding: int) -> str:
    try:
        return common_pb2.AudioEncoding.Name(encoding)
    except ValueError:
        return str(encoding)


def check_rate(rate: int, what: str = "sample_rate_hz") -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidInput(
            f"{what} {rate} is impossible: give a rate from {MIN_RATE} to {MAX_RATE} Hz",
            reason=ErrorCode.BAD_SAMPLE_RATE,
        )


def check_channels(channels: int) -> None:
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidInput(f"channels {channels} is not supported: 1 to {MAX_CHANNELS}", reason=ErrorCode.BAD_CHANNELS)


def pcm16_to_float(data: bytes, channels: int) -> np.ndarray:
    if len(data) % 2:
        raise InvalidInput(
            f"PCM16 audio must have an even number of bytes (got {len(data)})", reason=ErrorCode.BAD_PCM_LENGTH
        )
    frame_bytes = 2 * channels
    if len(data) % frame_bytes:
        raise InvalidInput(
            f"PCM16 audio of {channels} channels must be a multiple of {frame_bytes} bytes (got {len(data)})",
            reason=ErrorCode.BAD_PCM_LENGTH,
        )
    ints = np.frombuffer(data, dtype="<i2").reshape(-1, channels)
    return ints.astype(np.float32) / 32768.0


def decode(data: bytes, fmt: common_pb2.AudioFormat, *, max_seconds: float | None = None) -> Audio:
    """Decode ``data`` declared as ``fmt``; validate it; enforce ``max_seconds``."""
    if fmt.encoding == PCM16:
        if fmt.sample_rate_hz == 0:
            raise InvalidInput("sample_rate_hz is required for PCM16 audio", reason=ErrorCode.BAD_SAMPLE_RATE)
        check_rate(fmt.sample_rate_hz)
        channels = fmt.channels or 1
        check_channels(channels)
        audio = Audio(pcm16_to_float(data, channels), fmt.sample_rate_hz)
    elif fmt.encoding == WAV:
        audio = decode_wav(data)
        if fmt.sample_rate_hz and fmt.sample_rate_hz != audio.sample_rate:
            raise InvalidInput(
                f"declared sample_rate_hz {fmt.sample_rate_hz} disagrees with the WAV header's {audio.sample_rate}",
                reason=ErrorCode.FORMAT_MISMATCH,
            )
        if fmt.channels and fmt.channels != audio.channels:
            raise InvalidInput(
                f"declared channels {fmt.channels} disagrees with the WAV header's {audio.channels}",
                reason=ErrorCode.FORMAT_MISMATCH,
            )
    else:
        raise InvalidInput(
            f"audio encoding {encoding_name(fmt.encoding)} is not supported: use "
            "AUDIO_ENCODING_PCM16 (with sample_rate_hz and channels) or AUDIO_ENCODING_WAV",
            reason=ErrorCode.BAD_ENCODING,
        )
    if audio.samples.shape[0] == 0:
        raise InvalidInput("audio is empty", reason=ErrorCode.EMPTY_AUDIO)
    check_duration(audio.seconds, max_seconds)
    return audio


def check_duration(seconds: float, max_seconds: float | None) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise TooLarge(
            f"audio is {seconds:.1f} s long; the limit is {max_seconds:g} s", reason=ErrorCode.AUDIO_TOO_LONG
        )


# WAVE format tags: integer PCM, IEEE float, and the extensible header whose sub-format says which.
_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


def _wav_chunks(data: bytes) -> tuple[bytes, bytes]:
    """The ``fmt `` chunk and the ``data`` chunk of a RIFF/WAVE file (a truncated data chunk is kept)."""
    fmt: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        name, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = data[offset + 8 : offset + 8 + size]
        if name == b"fmt ":
            fmt = body
        elif name == b"data":
            if fmt is None:
                raise InvalidInput("corrupt WAV: the data chunk comes before the fmt chunk", reason=ErrorCode.BAD_WAV)
            return fmt, body
        offset += 8 + size + (size & 1)  # chunks are padded to an even size
    what = "no fmt chunk" if fmt is None else "no data chunk"
    raise InvalidInput(f"corrupt WAV: {what}", reason=ErrorCode.BAD_WAV)


def decode_wav(data: bytes) -> Audio:
    """A RIFF/WAVE file: 8/16/24/32-bit integer PCM or 32/64-bit float, plain or WAVE_FORMAT_EXTENSIBLE."""
    if not data:
        raise InvalidInput("audio is empty", reason=ErrorCode.EMPTY_AUDIO)
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InvalidInput("corrupt WAV: no RIFF/WAVE header", reason=ErrorCode.BAD_WAV)
    fmt, frames = _wav_chunks(data)
    if len(fmt) < 16:
        raise InvalidInput(f"corrupt WAV: a fmt chunk of {len(fmt)} bytes (at least 16)", reason=ErrorCode.BAD_WAV)
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE:
        if len(fmt) < 26:
            raise InvalidInput("corrupt WAV: an extensible fmt chunk without its sub-format", reason=ErrorCode.BAD_WAV)
        tag = struct.unpack_from("<H", fmt, 24)[0]  # the first two bytes of the sub-format GUID
    check_channels(channels)
    check_rate(rate, "WAV sample rate")
    if (
        tag not in (_PCM, _FLOAT)
        or bits % 8
        or not ((tag == _PCM and 8 <= bits <= 32) or (tag == _FLOAT and bits in (32, 64)))
    ):
        kind = {_PCM: "integer PCM", _FLOAT: "float"}.get(tag, f"format {tag:#06x}")
        raise InvalidInput(
            f"WAV sample width of {bits} bits ({kind}) is not supported: use 8/16/24/32-bit integer PCM or "
            "32/64-bit float",
            reason=ErrorCode.BAD_WAV,
        )
    width = bits // 8
    usable = len(frames) - len(frames) % (width * channels)
    frames = frames[:usable]
    if tag == _FLOAT:
        floats = np.frombuffer(frames, dtype="<f4" if width == 4 else "<f8").astype(np.float32)
        samples = np.nan_to_num(np.clip(floats, -1.0, 1.0))
    elif width == 2:
        samples = pcm16_to_float(frames, channels)
    elif width == 1:  # unsigned 8-bit
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        ints = raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8) | (raw[:, 2].astype(np.int32) << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = ints.astype(np.float32) / float(1 << 23)
    else:
        samples = np.frombuffer(frames, dtype="<i4").astype(np.float32) / float(1 << 31)
    return Audio(samples.reshape(-1, channels), rate)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """High-quality resampling (soxr) of 1-D float32 samples."""
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def float_to_pcm16(samples: np.ndarray) -> bytes:
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).round().astype("<i2").tobytes()


def wav_bytes(pcm16: bytes, sample_rate: int, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm16)
    return out.getvalue()
