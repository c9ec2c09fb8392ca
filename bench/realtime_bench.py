"""realtime: end of speech -> first reply audio through OpenAI's Realtime API (the `openai` SDK's client,
PCM at 24 kHz) beside the same turn over ``/v1/stream`` (16 kHz), on one stack in the same run; and what
``semantic_vad`` does with a speaker who pauses for thought, beside ``server_vad``.

The questions of the turn bench (piper's voice, and espeak-ng's UK voice, whose
finished questions the turn model often hears as unfinished), streamed in real
time in 20 ms appends, a fresh session each, the routes taking turns so that a
slow moment of the machine falls on all. ``semantic_vad`` runs also on a
second core on the same services whose words end no pause
(``core.turn_words_end_threshold`` 0): what that rule gives a Realtime session. Measured from the last audible
sample to the first ``response.output_audio.delta`` (and to the first audio
byte on /v1/stream). The ratio is what the Realtime layer costs.

The hesitations are the peers bench's: sentences with a 600 ms pause after
their first part ("What is the best way ... to cook rice on the stove?").
One is cut off when the session commits more than one item for it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
import openai

from bench.common import Inputs, Report, median, realtime_chunks, stack_ports
from bench.core_bench import ws_turn
from bench.peers_bench import utterances
from voxstack.audio import float_to_pcm16, resample

RATE = 24_000
#: The same services, a core whose words end no pause.
SOUND_ALONE = "words end no pause"
VARIANTS = {SOUND_ALONE: {"VOXSTACK_CORE__TURN_WORDS_END_THRESHOLD": "0"}}


@dataclass
class Heard:
    first_audio: float  # seconds from the end of the sentence to the first reply audio delta
    committed: int  # items the session committed while the sentence was said and answered


def realtime_turn(
    client: openai.OpenAI, audio16k: np.ndarray, tail: float = 2.0, detection: dict[str, Any] | None = None
) -> Heard:
    """A sentence streamed in real time to a fresh Realtime session (with ``detection`` as its turn detection),
    read until a response to it is completed."""
    audio = resample(audio16k, 16_000, RATE)
    lead = int(0.3 * RATE)
    pcm = float_to_pcm16(np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(int(tail * RATE), np.float32)]))
    marks: dict[str, float] = {}
    committed = 0
    with client.realtime.connect(model="voxstack") as connection:
        assert json.loads(connection.recv_bytes())["type"] == "session.created"
        if detection is not None:
            input_audio = {"transcription": {"model": "whisper-1"}, "turn_detection": detection}
            session: Any = {"type": "realtime", "audio": {"input": input_audio}}  # the SDK's TypedDicts, as JSON
            connection.session.update(session=session)
            while json.loads(connection.recv_bytes())["type"] != "session.updated":
                pass

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
                elif event["type"] == "input_audio_buffer.committed":
                    committed += 1
                elif event["type"] == "response.done" and event["response"]["status"] == "completed":
                    if "speech_end" in marks:  # else it answered a part, while the rest was still being said
                        break
                elif event["type"] == "error":
                    raise RuntimeError(event)
        finally:
            sender.join()
    return Heard(marks["first_audio"] - marks["speech_end"], committed)


SEMANTIC = {"type": "semantic_vad"}
SERVER = {"type": "server_vad"}


def run(report: Report, inputs: Inputs) -> None:
    said, hesitating = utterances(inputs)
    questions = [audio for _, audio in said]
    paused = [audio for _, audio in hesitating]
    stream, realtime, semantic, alone = [], [], [], []
    cut: dict[str, list[Heard]] = {"server_vad": [], "semantic_vad": [], f"semantic_vad, {SOUND_ALONE}": []}
    with ExitStack() as stack:
        ports = stack_ports(stack, inputs.models_dir, variants=VARIANTS)
        port = ports["core"]

        def client_of(core: int) -> openai.OpenAI:
            base = f"http://127.0.0.1:{core}/v1"
            return stack.enter_context(openai.OpenAI(base_url=base, api_key="unused", max_retries=0))

        client, variant = client_of(port), client_of(ports[SOUND_ALONE])
        ws_turn(port, questions[0], tail=2.0)  # warm-up, every route
        realtime_turn(client, questions[0])
        realtime_turn(client, questions[0], detection=SEMANTIC)
        realtime_turn(variant, questions[0], detection=SEMANTIC)
        for question in questions:
            stream.append(ws_turn(port, question, tail=2.0)["first_audio"])
            realtime.append(realtime_turn(client, question).first_audio)
            semantic.append(realtime_turn(client, question, detection=SEMANTIC).first_audio)
            alone.append(realtime_turn(variant, question, detection=SEMANTIC).first_audio)
        for sentence in paused:
            cut["server_vad"].append(realtime_turn(client, sentence, tail=2.5, detection=SERVER))
            cut["semantic_vad"].append(realtime_turn(client, sentence, tail=2.5, detection=SEMANTIC))
            cut[f"semantic_vad, {SOUND_ALONE}"].append(realtime_turn(variant, sentence, tail=2.5, detection=SEMANTIC))
    note = f"{len(questions)} questions, real time, fresh session each, routes alternating; median of turns"
    report.add("realtime", "/v1/stream: end of speech -> first audio byte", median(stream), "s", "", note)
    report.add("realtime", "/v1/realtime: end of speech -> first output_audio.delta", median(realtime), "s", "", "")
    report.add(
        "realtime", "/v1/realtime over /v1/stream, medians", median(realtime) / median(stream), "x", "<= 1.1", ""
    )
    report.add("realtime", "/v1/realtime, semantic_vad: same", median(semantic), "s", "", "the words judged too")
    report.add("realtime", f"/v1/realtime, semantic_vad, {SOUND_ALONE}: same", median(alone), "s", "", "")
    for name, heard in cut.items():
        count = sum(h.committed > 1 for h in heard)
        waited = median([h.first_audio for h in heard])
        note = f"{count} of {len(heard)}; end of the sentence -> first reply audio, median {waited:.2f} s"
        report.add("realtime", f"{name}: 600 ms hesitations cut off", count / max(1, len(heard)), "share", "", note)
