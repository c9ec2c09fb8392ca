"""Memory of every process stays at its plateau: after bursts of work each comes back to about the size
it had after the first (issue 31: the tts grew from 213 to 848 MB under long speech and kept it).

Sizes, not times: what a process holds after the same work is about the same on a busy machine and a
quiet one (allocators keep some tens of MiB either way: the bounds are for growth, not noise). The
real models, since what grows is theirs (onnxruntime's arena, CTranslate2's and llama.cpp's buffers),
on a stack of their own: its sizes before any work are the reference.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from stack import TEST_LLM, Stack

MiB = 2**20
#: What a process may hold beyond its plateau after more bursts: allocator noise, not growth.
SLACK = 128 * MiB
#: What the tts may hold beyond its size before any speech: the buffers of its longest sentence, not an
#: arena that keeps what every sentence took (that kept 550 MiB more after one burst).
TTS_WORKING_SET = 256 * MiB
LLM_MODEL = Path(TEST_LLM.gguf).stem
#: Sentences a burst speaks, in this many requests at once.
SPOKEN = 16
SPEECHES = 4


@pytest.fixture(scope="module")
def stack(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Its own: the shared stack's processes carry what earlier tests made them hold.
    logs = tmp_path_factory.mktemp("memory")
    running = Stack(models_dir, logs).up()
    yield running
    running.down()


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def sizes(stack: Stack) -> dict[str, int]:
    return {name: rss(process.pid) for name, process in stack.procs.items()}


def burst(stack: Stack, seed: int) -> None:
    """Speech of sentences of every length up to the tts's longest, chats and transcriptions, at once."""
    rng = random.Random(seed)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "seven",
        "small",
        "birds",
        "sing",
    ]

    # Every length up to the longest, in a different order each burst: what an arena keeps is per length.
    lengths = [3 + (42 * i) // (SPOKEN - 1) for i in range(SPOKEN)]
    rng.shuffle(lengths)

    def sentence(length: int | None = None) -> str:
        length = length or rng.randint(3, 45)
        return " ".join(rng.choice(words) for _ in range(length)).capitalize() + "."

    def speech(part: list[int]) -> None:
        text = " ".join(sentence(n) for n in part)
        body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav"}
        assert httpx.post(f"{stack.url}/v1/audio/speech", json=body, timeout=300).status_code == 200

    def chat() -> None:
        body = {"model": LLM_MODEL, "messages": [{"role": "user", "content": sentence()}], "max_tokens": 40}
        assert httpx.post(f"{stack.url}/v1/chat/completions", json=body, timeout=300).status_code == 200

    def transcribe() -> None:
        body = {"model": "tts-1", "voice": "alloy", "input": sentence(), "response_format": "wav"}
        audio = httpx.post(f"{stack.url}/v1/audio/speech", json=body, timeout=300).content
        files = {"file": ("a.wav", audio, "audio/wav")}
        url = f"{stack.url}/v1/audio/transcriptions"
        assert httpx.post(url, data={"model": "whisper-1"}, files=files, timeout=300).status_code == 200

    with ThreadPoolExecutor(4) as pool:
        jobs = [pool.submit(speech, lengths[i::SPEECHES]) for i in range(SPEECHES)]
        jobs += [pool.submit(job) for job in [chat, transcribe] * 2]
        for done in jobs:
            done.result()


def test_every_process_comes_back_to_its_plateau_after_a_burst(stack: Stack) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": "Hello there.", "response_format": "wav"}
    assert httpx.post(f"{stack.url}/v1/audio/speech", json=body, timeout=300).status_code == 200
    before = sizes(stack)
    burst(stack, seed=1)  # the plateau: what the work needs once
    plateau = sizes(stack)
    burst(stack, seed=2)  # other sentences: what a process keeps of them is growth
    after = sizes(stack)
    mib = {n: f"{before[n] // MiB} -> {plateau[n] // MiB} -> {after[n] // MiB}" for n in after}
    grown = [n for n in after if after[n] > plateau[n] + max(SLACK, plateau[n] // 4)]
    assert not grown, f"grown past the plateau: {grown} (MiB before, after one burst, after two: {mib})"
    assert after["tts"] - before["tts"] < TTS_WORKING_SET, f"the tts kept what its runs took: {mib['tts']} MiB"
