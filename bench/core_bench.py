"""core: end of speech to first reply audio over the WebSocket, and whole turns through /v1/converse."""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack

import httpx
import numpy as np
from websockets.sync.client import connect

from bench.common import Inputs, Report, median, realtime_chunks, speech16k, whole_stack
from voxstack.audio import float_to_pcm16, wav_bytes

# Questions of three to five seconds, as the benchmark asks.
QUESTIONS = [
    "Could you please tell me what the capital city of France is called?",
    "How many days are there in a week, and what is the first one called?",
    "Can you tell me what the weather is usually like in London in the spring?",
    "What would be a good name for a small brown dog that likes to play?",
    "Please tell me something interesting about the animals that live in the ocean.",
    "What should I cook for breakfast tomorrow morning before I go to work?",
    "How far is it from the earth to the sun, in kilometres or in miles?",
    "What colour do you get when you mix blue paint with yellow paint?",
    "Who wrote the famous play about Romeo and Juliet, and when was it written?",
    "Can you recommend a good book that I could read on my summer holiday?",
]


def ws_turn(port: int, audio: np.ndarray, tail: float = 1.0) -> dict[str, float]:
    """Stream silence + question + silence in real time; seconds from the last speech chunk to the first audio byte
    and to the end of the turn (``speech_ended``), and the turn's stages (``stage NAME``, from that end).

    A second thread sends the audio so that replies are read while the trailing
    silence is still being sent, as a client that plays them would.
    """
    pcm = float_to_pcm16(np.concatenate([np.zeros(4800, np.float32), audio, np.zeros(int(tail * 16000), np.float32)]))
    marks: dict[str, float] = {}
    with connect(f"ws://127.0.0.1:{port}/v1/stream", max_size=None) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "interim_results": False}))
        ws.recv(timeout=10)

        def send() -> None:
            for chunk in realtime_chunks(pcm, 4800 + audio.size, marks):
                ws.send(chunk)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            while True:
                message = ws.recv(timeout=60)
                if isinstance(message, bytes):
                    marks.setdefault("first_audio", time.perf_counter())
                    continue
                event = json.loads(message)
                if event["type"] == "speech_ended":
                    marks.setdefault("speech_ended", time.perf_counter())
                if event["type"] == "reply_done":
                    break
                if event["type"] == "error":
                    raise RuntimeError(event)
        finally:
            sender.join()
    return {
        "first_audio": marks["first_audio"] - marks["speech_end"],
        # The asr's speech_ended as the client sees it: the end of the turn, from which the stages count.
        "turn_end": marks["speech_ended"] - marks["speech_end"],
        **{f"stage {k}": v for k, v in event["timings"].items()},
    }


def run(report: Report, inputs: Inputs) -> None:
    voice, models_dir = inputs.voice, inputs.models_dir
    with ExitStack() as stack:
        core_port = whole_stack(stack, models_dir, {"VOXSTACK_LLM__MAX_TOKENS": "80"})
        questions = [speech16k(voice, q) for q in QUESTIONS]
        ws_turn(core_port, questions[0])  # warm-up
        ws = [ws_turn(core_port, q) for q in questions]
        totals = []
        with httpx.Client(timeout=120) as client:
            for q in questions:
                body = wav_bytes(float_to_pcm16(np.concatenate([q, np.zeros(4800, np.float32)])), 16000)
                started = time.perf_counter()
                response = client.post(
                    f"http://127.0.0.1:{core_port}/v1/converse", content=body, headers={"Content-Type": "audio/wav"}
                )
                response.raise_for_status()
                totals.append(time.perf_counter() - started)
    lengths = [q.size / 16000 for q in questions]
    note = f"median of {len(questions)} questions of {min(lengths):.1f}-{max(lengths):.1f} s"
    report.add(
        "core",
        "WebSocket: end of speech to first audio byte",
        median([t["first_audio"] for t in ws]),
        "s",
        "<= 0.8",
        note,
    )
    for key in (
        "stage asr_decode",
        "stage llm_first_token",
        "stage first_sentence",
        "stage first_audio",
        "stage total",
    ):
        report.add(
            "core",
            f"WebSocket {key} (from speech_ended)" if key != "stage asr_decode" else "WebSocket stage asr_decode",
            median([t[key] for t in ws]),
            "s",
            "",
            "server-side",
        )
    report.add("core", "/v1/converse: whole turn", median(totals), "s", "", note)
