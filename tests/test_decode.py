"""The OpenAI transcription route's decoder against hostile files: bounded by what a file says and by what it
holds, before anything is resampled (issue 31's FLAC bomb: 55 bytes that took the core to 2 GB)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import httpx
import pytest

from voxstack.core.openai.decode import to_pcm16
from voxstack.errors import InvalidInput
from voxstack.testing.hostile import flac_bomb


def test_a_flac_at_one_sample_a_second_is_refused_before_it_is_resampled() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput) as refused:
            to_pcm16(flac_bomb(), 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.reason == "bad_sample_rate" and "1 Hz" in refused.value.message
    assert peak < 50 * 2**20, peak  # resampled first, it held 2 GB and then said "no audio samples"


def test_a_file_declaring_more_than_the_limit_is_refused_by_its_length() -> None:
    with pytest.raises(InvalidInput) as refused:
        to_pcm16(flac_bomb(rate=4_000), 10)  # 65,535 samples at 4 kHz: 16 s
    assert refused.value.reason == "audio_too_long" and "10 s" in refused.value.message


def late_wakeups(url: str, over: str = "0.5") -> float:
    """How often the core's event loop woke more than ``over`` seconds late, by its lag histogram."""
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    counts = {
        line.split('le="')[1].split('"')[0]: float(line.split()[-1])
        for line in lines
        if line.startswith("voxstack_core_event_loop_lag_seconds_bucket")
    }
    return counts["+Inf"] - counts[over]


def peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def test_the_core_answers_the_bomb_with_a_400_naming_the_rate_and_keeps_serving(fakes) -> None:
    """Decoded on the event loop, the bomb stalled every request for 0.9-6.9 s; resampled whole, it took
    the core to 2 GB. A loop that wakes half a second late, or a peak 100 MB higher, fails here (the
    bounds leave room for a busy machine's scheduling; docs/PERFORMANCE.md has the measured lag)."""
    late, peak = late_wakeups(fakes.url), peak_rss(fakes.procs["core"].pid)
    for _ in range(3):
        response = httpx.post(
            f"{fakes.url}/v1/audio/transcriptions",
            files={"file": ("bomb.flac", flac_bomb(), "audio/flac")},
            data={"model": "whisper-1"},
            timeout=30,
        )
        assert response.status_code == 400, response.text
        assert "sample rate of 1 Hz" in response.json()["error"]["message"]
    assert httpx.get(f"{fakes.url}/livez", timeout=10).status_code == 200
    assert late_wakeups(fakes.url) == late
    assert peak_rss(fakes.procs["core"].pid) - peak < 100 * 2**20
