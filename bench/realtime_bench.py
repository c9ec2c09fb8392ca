"""realtime: end of speech -> first reply audio through OpenAI's Realtime API (the `openai` SDK's client,
PCM at 24 kHz) beside the same turn over ``/v1/stream`` (16 kHz), on one stack in the same run.

The questions of the turn bench, said by the piper voice, streamed in real time
in 20 ms appends, a fresh session each, the two routes taking turns so that a
slow moment of the machine falls on both. Measured from the last audible
sample to the first ``response.output_audio.delta`` (and to the first audio
byte on /v1/stream). The ratio is what the Realtime layer costs.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import openai

from bench.common import Inputs, Report, median, realtime_chunks, speech16k, whole_stack
from bench.core_bench import ws_turn
from voxstack.audio import float_to_pcm16, resample

QUESTIONS = Path(__file__).resolve().parent / "data" / "questions.json"
COUNT = 10
RATE = 24_000


def realtime_turn(client: openai.OpenAI, audio16k: np.ndarray, tail: float = 2.0) -> float:
    """Seconds from the end of the question to the first reply audio delta, over a fresh Realtime session."""
    audio = resample(audio16k, 16_000, RATE)
    lead = int(0.3 * RATE)
    pcm = float_to_pcm16(np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(int(tail * RATE), np.float32)]))
    marks: dict[str, float] = {}
    with client.realtime.connect(model="voxstack") as connection:
        assert json.loads(connection.recv_bytes())["type"] == "session.created"

        def send() -> None:
            for chunk in realtime_chunks(pcm, lead + audio.size, marks, chunk=RATE // 50, rate=RATE):
                connection.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            while True:
                event = json.loads(connection.recv_bytes())
                if event["type"] == "response.output_audio.delta":
                    marks.setdefault("first_audio", time.perf_counter())
                elif event["type"] == "response.done":
                    break
                elif event["type"] == "error":
                    raise RuntimeError(event)
        finally:
            sender.join()
    return marks["first_audio"] - marks["speech_end"]


def run(report: Report, inputs: Inputs) -> None:
    plain = json.loads(QUESTIONS.read_text())["plain"]
    questions = [speech16k(inputs.voice, item["q"]) for item in plain[:: len(plain) // COUNT][:COUNT]]
    stream, realtime = [], []
    with ExitStack() as stack:
        port = whole_stack(stack, inputs.models_dir)
        client = stack.enter_context(
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        )
        ws_turn(port, questions[0], tail=2.0)  # warm-up, both routes
        realtime_turn(client, questions[0])
        for question in questions:
            stream.append(ws_turn(port, question, tail=2.0)["first_audio"])
            realtime.append(realtime_turn(client, question))
    note = f"{len(questions)} questions, real time, fresh session each, routes alternating; median of turns"
    report.add("realtime", "/v1/stream: end of speech -> first audio byte", median(stream), "s", "", note)
    report.add("realtime", "/v1/realtime: end of speech -> first output_audio.delta", median(realtime), "s", "", "")
    report.add(
        "realtime", "/v1/realtime over /v1/stream, medians", median(realtime) / median(stream), "x", "<= 1.1", ""
    )
