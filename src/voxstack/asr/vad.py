"""Voice activity detection over a stream: silero VAD (as bundled with faster-whisper).

``SileroStream`` runs the model window by window, carrying its recurrent state
and context between calls, so feeding audio in pieces gives the same
probabilities as feeding it whole. ``Segmenter`` turns probabilities into
speech start/end events with the same hysteresis as faster-whisper's
``get_speech_timestamps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxstack.asr import SAMPLE_RATE

WINDOW = 512  # samples at 16 kHz: 32 ms
CONTEXT = 64


def load_silero_session() -> Any:
    """The ONNX session of faster-whisper's bundled silero model."""
    from faster_whisper.vad import get_vad_model

    return get_vad_model().session


class SileroStream:
    """Speech probability per 32 ms window of a 16 kHz stream."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities for every window completed by ``samples`` (a remainder waits for more)."""
        buffer = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        count = buffer.shape[0] // WINDOW
        self._pending = buffer[count * WINDOW :]
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        windows = buffer[: count * WINDOW].reshape(count, WINDOW)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -CONTEXT:]], axis=0)
        batch = np.concatenate([contexts, windows], axis=1)
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = windows[-1, -CONTEXT:].copy()
        return np.asarray(out, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class VadEvent:
    """``start`` or ``end`` of speech at ``sample`` (absolute position in the stream, padding included).

    For ``end`` events, ``speech_end`` is where the last speech window ended (no padding), and ``rule``
    what ended it: ``silence``, ``turn_model``, ``words``, ``stream_end`` or ``max_length``.
    """

    kind: str
    sample: int
    speech_end: int = 0
    rule: str = ""


class Segmenter:
    """Speech start/end from per-window probabilities, with hysteresis and padding."""

    def __init__(self, threshold: float, min_silence_ms: int, min_speech_ms: int, pad_ms: int) -> None:
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)
        per_ms = SAMPLE_RATE / 1000
        self.min_silence_windows = max(1, math.ceil(min_silence_ms * per_ms / WINDOW))
        self.min_speech_windows = max(1, math.ceil(min_speech_ms * per_ms / WINDOW))
        self.pad = int(pad_ms * per_ms)
        self.in_speech = False
        self._window = 0  # index of the next window
        self._candidate: int | None = None  # first window of a possible start
        self._run = 0
        self._last_speech = 0
        self._silence = 0
        self._last_end = 0

    @property
    def position(self) -> int:
        """Samples consumed so far."""
        return self._window * WINDOW

    @property
    def pause_windows(self) -> int:
        """Silent windows since the last speech in the current utterance (0 outside one)."""
        return self._silence if self.in_speech else 0

    @property
    def starting(self) -> bool:
        """Speech-like windows seen, not yet enough to start speech."""
        return not self.in_speech and self._candidate is not None

    @property
    def speech_end(self) -> int:
        """End of the last speech window seen."""
        return (self._last_speech + 1) * WINDOW

    def push(self, probabilities: np.ndarray) -> list[VadEvent]:
        events: list[VadEvent] = []
        for p in probabilities:
            index = self._window
            self._window += 1
            if not self.in_speech:
                if p >= self.threshold:
                    if self._candidate is None:
                        self._candidate = index
                    self._run += 1
                    if self._run >= self.min_speech_windows:
                        self.in_speech = True
                        self._last_speech = index
                        self._silence = 0
                        start = max(self._last_end, self._candidate * WINDOW - self.pad, 0)
                        events.append(VadEvent("start", start))
                else:
                    self._candidate, self._run = None, 0
                continue
            if p >= self.threshold:
                self._last_speech = index
                self._silence = 0
            elif p < self.neg_threshold:
                self._silence += 1
                if self._silence >= self.min_silence_windows:
                    events.append(self._end(self.speech_end + self.pad, "silence"))
        return events

    def force_end(self, rule: str) -> VadEvent | None:
        """End the current utterance here (end of stream, or it grew too long)."""
        return self._end(self.position, rule) if self.in_speech else None

    def end_pause(self, rule: str) -> VadEvent | None:
        """End the current utterance at its pause, padded as a silence would end it (``rule`` said so: the turn
        model, or the caller judging the words)."""
        return self._end(self.speech_end + self.pad, rule) if self.pause_windows else None

    def _end(self, sample: int, rule: str) -> VadEvent:
        end = min(sample, self.position)
        speech_end = min(self.speech_end, end)
        self.in_speech = False
        self._candidate, self._run, self._silence = None, 0, 0
        self._last_end = end
        return VadEvent("end", end, speech_end, rule)
