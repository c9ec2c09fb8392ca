"""Preemptive replies: end of speech -> first reply audio byte over the WebSocket, with and without preemption.

One llm and one tts; an asr per end-of-utterance silence; a core per (silence,
preemption). Every question is asked of every core in turn (drift on a noisy
machine hits them alike), streamed in real time by a WebSocket client that
counts from the last chunk holding speech. Questions said in one breath give
the latency; the same questions with a mid-sentence pause give how often a
pause cuts the speaker off (a reply to half a question).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from contextlib import ExitStack

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bench.common import Inputs, Report, median, realtime_chunks, service, speech16k
from bench.core_bench import QUESTIONS
from voxstack.audio import float_to_pcm16

SILENCES_MS = (300, 500, 1000)
PAUSE = 0.45  # seconds, mid-sentence: a speaker looking for a word
STAGES = ("speculation_lead", "asr_decode", "llm_first_token", "first_sentence", "first_audio")


def turn(port: int, audio: np.ndarray, trailing: float = 1.5) -> dict[str, object]:
    """Stream ``audio`` (then ``trailing`` seconds of silence) in real time, end the stream, read until closed."""
    pcm = float_to_pcm16(
        np.concatenate([np.zeros(4800, np.float32), audio, np.zeros(int(trailing * 16000), np.float32)])
    )
    marks: dict[str, float] = {}
    binaries: list[float] = []
    events: list[dict] = []
    with connect(f"ws://127.0.0.1:{port}/v1/stream", max_size=None) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "interim_results": False}))
        ws.recv(timeout=10)

        def send() -> None:
            for chunk in realtime_chunks(pcm, 4800 + audio.size, marks):
                ws.send(chunk)
            ws.send(json.dumps({"type": "end"}))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            while True:
                message = ws.recv(timeout=60)
                if isinstance(message, bytes):
                    binaries.append(time.perf_counter())
                else:
                    events.append(json.loads(message))
        except ConnectionClosed:
            pass
        finally:
            sender.join()
    end = marks["speech_end"]
    errors = [e for e in events if e["type"] == "error"]
    if errors:
        raise RuntimeError(errors)
    done = [e for e in events if e["type"] == "reply_done"]
    after = [t for t in binaries if t >= end]
    return {
        "cut": sum(e["type"] == "transcript" for e in events) > 1 or len(after) < len(binaries),
        "first_audio": after[0] - end if after else float("nan"),
        "timings": done[-1]["timings"] if done else {},
    }


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else float("nan")


def run(report: Report, inputs: Inputs) -> None:
    voice, models_dir = inputs.voice, inputs.models_dir
    whole = [speech16k(voice, q) for q in QUESTIONS]
    paused = []
    for q in QUESTIONS:
        words = q.split()
        first, second = " ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2 :])
        paused.append(
            np.concatenate(
                [speech16k(voice, first), np.zeros(int(PAUSE * 16000), np.float32), speech16k(voice, second)]
            )
        )
    configs = [(silence, preempt) for silence in SILENCES_MS for preempt in (False, True)]
    results: dict[tuple[int, bool], list[dict]] = {c: [] for c in configs}
    cuts: dict[tuple[int, bool], list[bool]] = {c: [] for c in configs}
    with ExitStack() as stack:
        base = {"VOXSTACK_MODELS_DIR": str(models_dir), "VOXSTACK_LLM__MAX_TOKENS": "80"}
        llm = stack.enter_context(service("llm", base))
        tts = stack.enter_context(service("tts", base))
        ports: dict[tuple[int, bool], int] = {}
        for silence in SILENCES_MS:
            asr = stack.enter_context(service("asr", base | {"VOXSTACK_ASR__VAD_MIN_SILENCE_MS": str(silence)}))
            for preempt in (False, True):
                env = base | {
                    "VOXSTACK_CORE__ASR_ADDRESS": asr,
                    "VOXSTACK_CORE__LLM_ADDRESS": llm,
                    "VOXSTACK_CORE__TTS_ADDRESS": tts,
                    "VOXSTACK_CORE__PREEMPTIVE_REPLY": str(preempt).lower(),
                }
                ports[(silence, preempt)] = int(stack.enter_context(service("core", env)).rsplit(":", 1)[1])
        turn(ports[configs[0]], whole[0])  # warm-up
        for i, (question, with_pause) in enumerate(zip(whole, paused, strict=True)):
            order = configs[i % len(configs) :] + configs[: i % len(configs)]
            for config in order:
                results[config].append(turn(ports[config], question))
                cuts[config].append(bool(turn(ports[config], with_pause)["cut"]))
    note = f"{len(QUESTIONS)} questions, real time; pauses of {PAUSE:g} s mid-sentence for the cut-off rate"
    for silence, preempt in configs:
        name = f"silence {silence} ms, preemption {'on' if preempt else 'off'}"
        turns = [t for t in results[(silence, preempt)] if not t["cut"]]
        firsts = [float(t["first_audio"]) for t in turns]
        report.add(
            "preemption", f"{name}: end of speech -> first audio byte, median", median(firsts), "s", "<= 0.45", note
        )
        report.add("preemption", f"{name}: end of speech -> first audio byte, p95", p95(firsts), "s", "<= 0.7", note)
        report.add(
            "preemption",
            f"{name}: pauses that cut the speaker off",
            100 * sum(cuts[(silence, preempt)]) / len(cuts[(silence, preempt)]),
            "%",
        )
        for stage in STAGES:
            values = [float(t["timings"].get(stage, 0.0)) for t in turns if t["timings"]]
            report.add(
                "preemption", f"{name}: stage {stage} (from speech_ended)", median(values), "s", "", "server-side"
            )
