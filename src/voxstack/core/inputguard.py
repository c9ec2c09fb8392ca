"""What a WebSocket client may send after its config: how many messages, how much audio, how fast.

Pure: the conversation asks before it queues each message, with the clock
injected, so the limits are tested without a socket or a wait. A client that
sends audio faster than ``ws_realtime_factor`` times real time, beyond
``ws_burst_seconds`` of it, is refused: held back instead, its surplus would
sit in socket buffers the core must work through before it can even see the
client leave. Many tiny messages cost the core far more than the audio they
carry, so their rate is bounded too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from voxstack.codes import CloseCode, ErrorCode
from voxstack.config import CoreSettings


@dataclass(frozen=True)
class Refusal:
    """Why the conversation ends: the error event's code and message, and the close code."""

    code: ErrorCode
    message: str
    close_code: int


class InputGuard:
    def __init__(
        self, limits: CoreSettings, frame_bytes: int, rate: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.frame_bytes = frame_bytes
        self.rate = rate
        self.clock = clock
        self.started = clock()
        self.messages = 0
        self.seconds = 0.0  # of audio received

    def message(self) -> Refusal | None:
        """Count one message of any kind; a Refusal past ``ws_max_frame_rate`` a second (after a grace of
        two seconds' worth)."""
        self.messages += 1
        elapsed = self.clock() - self.started
        rate = self.limits.ws_max_frame_rate
        if self.messages <= rate * (2 + elapsed):
            return None
        return Refusal(
            ErrorCode.TOO_MANY_MESSAGES,
            f"{self.messages} messages in {elapsed:.1f} s: send at most {rate:g} a second (20 ms of audio each "
            "is plenty)",
            CloseCode.POLICY_VIOLATION,
        )

    def audio(self, size: int) -> Refusal | None:
        """Take a binary frame of ``size`` bytes; a Refusal for partial samples or audio coming too fast."""
        if size % self.frame_bytes:
            return Refusal(
                ErrorCode.BAD_FRAME,
                f"a binary frame of {size} bytes is not whole PCM16 samples ({self.frame_bytes} bytes each): "
                "every frame must hold whole samples",
                CloseCode.INVALID_PAYLOAD,
            )
        self.seconds += size / self.frame_bytes / self.rate
        elapsed = self.clock() - self.started
        limits = self.limits
        if self.seconds <= limits.ws_burst_seconds + limits.ws_realtime_factor * elapsed:
            return None
        return Refusal(
            ErrorCode.AUDIO_TOO_FAST,
            f"{self.seconds:.1f} s of audio in {elapsed:.1f} s: send audio at most {limits.ws_realtime_factor:g} "
            f"times faster than real time (after the first {limits.ws_burst_seconds:g} s)",
            CloseCode.POLICY_VIOLATION,
        )
