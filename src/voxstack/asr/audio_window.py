"""The recent part of a 16 kHz audio stream, addressed by absolute sample position."""

from __future__ import annotations

import numpy as np

from voxstack.asr import SAMPLE_RATE


class AudioWindow:
    """The recent part of a 16 kHz stream, addressed by absolute sample position.

    Appends are amortised O(1): a long utterance fed in 10 ms chunks must not
    copy everything it holds at every chunk.
    """

    def __init__(self) -> None:
        self._data = np.zeros(SAMPLE_RATE, dtype=np.float32)
        self._len = 0
        self.start = 0  # absolute position of the first kept sample

    def append(self, samples: np.ndarray) -> None:
        need = self._len + samples.size
        if need > self._data.size:
            grown = np.empty(max(need, 2 * self._data.size), dtype=np.float32)
            grown[: self._len] = self._data[: self._len]
            self._data = grown
        self._data[self._len : need] = samples
        self._len = need

    def trim(self, absolute: int) -> None:
        """Forget what comes before ``absolute``."""
        drop = min(absolute - self.start, self._len)
        if drop <= 0:
            return
        remaining = self._len - drop
        self._data[:remaining] = self._data[drop : self._len]
        self._len = remaining
        self.start += drop

    def slice(self, start: int, end: int) -> np.ndarray:
        """A copy of samples ``start`` to ``end`` (absolute), as far as they are kept."""
        a = max(0, start - self.start)
        b = max(0, min(end - self.start, self._len))
        return self._data[a:b].copy()
