"""Audio the fake asr hears as speech or as silence: loud and quiet PCM16 stretches, at any rate."""

from __future__ import annotations

import numpy as np

from voxstack.audio import float_to_pcm16


def loud(seconds: float, rate: int = 16_000) -> bytes:
    """A stretch the fake asr takes for speech (a 300 Hz tone, well above its loudness level)."""
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return float_to_pcm16(0.3 * np.sin(2 * np.pi * 300.0 * t))


def quiet(seconds: float, rate: int = 16_000) -> bytes:
    """Silence."""
    return bytes(2 * int(seconds * rate))


def utterance(seconds: float = 0.6, rate: int = 16_000, *, before: float = 0.2, after: float = 0.5) -> bytes:
    """Silence, speech of ``seconds``, then enough silence (by default) for the fake asr to end the utterance."""
    return quiet(before, rate) + loud(seconds, rate) + quiet(after, rate)
