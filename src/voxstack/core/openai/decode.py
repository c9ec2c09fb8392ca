"""Any audio file a user is likely to send (wav, mp3, ogg/opus, flac, webm, m4a, ...) to 16 kHz mono PCM16.

PyAV (FFmpeg) reads the container whatever its name says; a file it cannot
read is a 400 naming the problem, never a 500.
"""

from __future__ import annotations

import io

import numpy as np

from voxstack.audio import MAX_RATE, MIN_RATE
from voxstack.codes import OpenAICode
from voxstack.errors import InvalidInput

RATE = 16000


def to_pcm16(data: bytes, max_seconds: float) -> bytes:
    """The first audio stream of ``data``, resampled to 16 kHz mono PCM16.

    Bounded at every step by what the file says and by what it holds: a sample rate no audio has, or more
    than ``max_seconds`` declared or decoded, is refused before the resampler turns it into samples (a few
    bytes of FLAC at 1 Hz would otherwise resample to gigabytes), and the output is checked after the
    resampler's last flush too. Blocking: call it off the event loop.
    """
    import av

    if not data:
        raise InvalidInput("file is empty", reason=OpenAICode.EMPTY_FILE)
    limit = int(max_seconds * RATE)
    pieces: list[np.ndarray] = []
    total = 0

    def keep(frames: list[av.AudioFrame]) -> None:
        nonlocal total
        for out in frames:
            samples = out.to_ndarray().reshape(-1)
            pieces.append(samples)
            total += samples.size
        if total > limit:
            raise _too_long(max_seconds)

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise InvalidInput("file has no audio stream", reason=OpenAICode.NO_AUDIO)
            stream = container.streams.audio[0]
            _check_rate(stream.rate)
            declared = stream.duration * stream.time_base if stream.duration and stream.time_base else 0
            if float(declared) > max_seconds:
                raise _too_long(max_seconds)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            heard = 0.0  # seconds of input decoded so far
            for frame in container.decode(audio=0):
                _check_rate(frame.sample_rate)  # a stream may change its rate midway
                heard += frame.samples / frame.sample_rate
                if heard > max_seconds:
                    raise _too_long(max_seconds)
                keep(resampler.resample(frame))
            keep(resampler.resample(None))
    except InvalidInput:
        raise
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise InvalidInput(
            f"file could not be decoded as audio: {str(exc)[:200]}", reason=OpenAICode.BAD_AUDIO
        ) from None
    if not pieces:
        raise InvalidInput("file holds no audio samples", reason=OpenAICode.EMPTY_AUDIO)
    return np.concatenate(pieces).astype("<i2").tobytes()


def _check_rate(rate: int | None) -> None:
    if rate is None or not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidInput(
            f"the file's sample rate of {rate} Hz is not one audio has: {MIN_RATE} to {MAX_RATE} Hz",
            reason=OpenAICode.BAD_SAMPLE_RATE,
        )


def _too_long(max_seconds: float) -> InvalidInput:
    return InvalidInput(f"the audio is longer than {max_seconds:g} s", reason=OpenAICode.AUDIO_TOO_LONG)
