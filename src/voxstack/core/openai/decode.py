"""Any audio file a user is likely to send (wav, mp3, ogg/opus, flac, webm, m4a, ...) to 16 kHz mono PCM16.

PyAV (FFmpeg) reads the container whatever its name says; a file it cannot
read is a 400 naming the problem, never a 500.
"""

from __future__ import annotations

import io

import numpy as np

from voxstack.errors import InvalidInput

RATE = 16000


def to_pcm16(data: bytes, max_seconds: float) -> bytes:
    """The first audio stream of ``data``, resampled to 16 kHz mono PCM16."""
    import av

    if not data:
        raise InvalidInput("file is empty", reason="empty_file")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise InvalidInput("file has no audio stream", reason="no_audio")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            pieces: list[np.ndarray] = []
            total = 0
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    pieces.append(samples)
                    total += samples.size
                if total > max_seconds * RATE:
                    raise InvalidInput(f"the audio is longer than {max_seconds:g} s", reason="audio_too_long")
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1))
    except InvalidInput:
        raise
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise InvalidInput(f"file could not be decoded as audio: {str(exc)[:200]}", reason="bad_audio") from None
    if not pieces:
        raise InvalidInput("file holds no audio samples", reason="empty_audio")
    return np.concatenate(pieces).astype("<i2").tobytes()
