"""The OpenAI-compatible routes against voxstack's own, same stack, same audio and text, interleaved.

Transcription: `/v1/audio/transcriptions` (multipart WAV) vs `/v1/transcribe`.
Speech: `/v1/audio/speech` as WAV vs `/v1/speak`, whole; and the time to the
first audio byte of a streamed `/v1/audio/speech` (mp3 and pcm) of three
sentences against the time to its whole body.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import httpx
import numpy as np

from bench.common import Inputs, Report, median, speech16k, whole_stack
from bench.core_bench import QUESTIONS
from voxstack.audio import float_to_pcm16, wav_bytes

TEXT = "The weather is lovely today. We should walk to the park after lunch. Bring a coat in case it rains."


def _timed(call) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def run(report: Report, inputs: Inputs) -> None:
    voice, models_dir = inputs.voice, inputs.models_dir
    with ExitStack() as stack:
        core = whole_stack(stack, models_dir)
        url = f"http://127.0.0.1:{core}"
        clips = [
            wav_bytes(float_to_pcm16(np.concatenate([speech16k(voice, q), np.zeros(4800)])), 16000) for q in QUESTIONS
        ]
        own_t: list[float] = []
        openai_t: list[float] = []
        own_s: list[float] = []
        openai_s: list[float] = []
        first_mp3: list[float] = []
        first_pcm: list[float] = []
        whole_mp3: list[float] = []
        with httpx.Client(timeout=120) as client:

            def own_transcribe(clip: bytes) -> None:
                r = client.post(f"{url}/v1/transcribe", content=clip, headers={"Content-Type": "audio/wav"})
                r.raise_for_status()

            def openai_transcribe(clip: bytes) -> None:
                r = client.post(
                    f"{url}/v1/audio/transcriptions", files={"file": ("q.wav", clip)}, data={"model": "whisper-1"}
                )
                r.raise_for_status()

            def own_speak() -> None:
                client.post(f"{url}/v1/speak", json={"text": TEXT}).raise_for_status()

            def openai_speak(fmt: str = "wav") -> None:
                body = {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": fmt}
                client.post(f"{url}/v1/audio/speech", json=body).raise_for_status()

            def first_byte(fmt: str) -> float:
                body = {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": fmt}
                started = time.perf_counter()
                with client.stream("POST", f"{url}/v1/audio/speech", json=body) as r:
                    r.raise_for_status()
                    pieces = r.iter_raw()
                    assert next(pieces)
                    taken = time.perf_counter() - started
                    for _ in pieces:
                        pass
                return taken

            # Warm-up.
            own_transcribe(clips[0])
            openai_transcribe(clips[0])
            own_speak()
            openai_speak()
            for i, clip in enumerate(clips):
                pair = [(own_t, lambda c=clip: own_transcribe(c)), (openai_t, lambda c=clip: openai_transcribe(c))]
                speak = [(own_s, own_speak), (openai_s, openai_speak)]
                for bucket, call in (pair + speak) if i % 2 else (pair[::-1] + speak[::-1]):
                    bucket.append(_timed(call))
                first_mp3.append(first_byte("mp3"))
                first_pcm.append(first_byte("pcm"))
                whole_mp3.append(_timed(lambda: openai_speak("mp3")))
    note = f"median of {len(clips)}, interleaved"
    report.add(
        "openai",
        "transcription: /v1/audio/transcriptions / /v1/transcribe",
        median(openai_t) / median(own_t),
        "ratio",
        "<= 1.05",
        f"{median(openai_t):.3f} / {median(own_t):.3f} s; {note}",
    )
    report.add(
        "openai",
        "speech (wav): /v1/audio/speech / /v1/speak",
        median(openai_s) / median(own_s),
        "ratio",
        "<= 1.05",
        f"{median(openai_s):.3f} / {median(own_s):.3f} s; {note}",
    )
    report.add(
        "openai",
        "streamed speech, 3 sentences: first mp3 byte",
        median(first_mp3),
        "s",
        "",
        f"whole mp3 body {median(whole_mp3):.3f} s",
    )
    report.add("openai", "streamed speech, 3 sentences: first pcm byte", median(first_pcm), "s", "", note)
