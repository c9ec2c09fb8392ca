"""The OpenAI transcription route's decoder against hostile files: bounded by what a file says and by what it
holds, before anything is resampled (issue 31's FLAC bomb: 55 bytes that took the core to 2 GB)."""

from __future__ import annotations

import tracemalloc

import httpx
import pytest
from hostile_audio import flac_bomb

from voxstack.core.openai.decode import to_pcm16
from voxstack.errors import InvalidInput


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


def test_the_core_answers_the_bomb_with_a_400_naming_the_rate_and_keeps_serving(fakes) -> None:
    response = httpx.post(
        f"{fakes.url}/v1/audio/transcriptions",
        files={"file": ("bomb.flac", flac_bomb(), "audio/flac")},
        data={"model": "whisper-1"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "sample rate of 1 Hz" in response.json()["error"]["message"]
    assert httpx.get(f"{fakes.url}/livez", timeout=10).status_code == 200
