"""The WebSocket's input checks on a clock the test moves: messages a second, whole samples, audio no faster
than its real-time factor after the burst. (test_hardening sends the same over a real socket.)"""

from __future__ import annotations

from voxstack.config import load_settings
from voxstack.core.inputguard import InputGuard

LIMITS = load_settings(core={"ws_max_frame_rate": 50, "ws_burst_seconds": 2.0, "ws_realtime_factor": 1.5}).core
FRAME = 2  # PCM16 mono
RATE = 16_000
SECOND = FRAME * RATE  # bytes of one second of audio


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_messages_may_come_at_the_frame_rate_after_a_grace_of_two_seconds_worth() -> None:
    clock = Clock()
    guard = InputGuard(LIMITS, FRAME, RATE, clock)
    assert all(guard.message() is None for _ in range(100))  # two seconds' worth at once
    refusal = guard.message()
    assert refusal is not None and refusal.code == "TOO_MANY_MESSAGES" and refusal.close_code == 1008
    assert "101 messages in 0.0 s" in refusal.message
    clock.now += 1.0  # a second later, fifty more are fine
    guard = InputGuard(LIMITS, FRAME, RATE, clock)
    clock.now += 1.0
    assert all(guard.message() is None for _ in range(150))
    assert guard.message() is not None


def test_audio_may_run_ahead_by_the_burst_then_at_its_real_time_factor() -> None:
    clock = Clock()
    guard = InputGuard(LIMITS, FRAME, RATE, clock)
    assert guard.audio(2 * SECOND) is None  # the burst
    refusal = guard.audio(SECOND // 10)
    assert refusal is not None and refusal.code == "AUDIO_TOO_FAST" and refusal.close_code == 1008
    assert "2.1 s of audio in 0.0 s" in refusal.message

    guard = InputGuard(LIMITS, FRAME, RATE, clock)
    for _ in range(10):  # 1.5 s of audio each second, for ten seconds, after the burst: all fine
        clock.now += 1.0
        assert guard.audio(3 * SECOND // 2) is None
    assert guard.audio(2 * SECOND) is None  # the burst is still there to use
    assert guard.audio(FRAME * 160) is not None  # and not more


def test_a_frame_of_partial_samples_is_refused_as_invalid_payload() -> None:
    stereo = InputGuard(LIMITS, 4, RATE, Clock())
    refusal = stereo.audio(6)
    assert refusal is not None and refusal.code == "BAD_FRAME" and refusal.close_code == 1007
    assert "6 bytes is not whole PCM16 samples (4 bytes each)" in refusal.message
    assert stereo.audio(8) is None
