"""Preemptive replies: the asr's speculative transcript at a pause, the core's reply held until the end is confirmed.

Speech is sent in real time (a pause only exists in real time for a streaming
asr), with a mid-sentence pause longer than the speculative decode takes but
shorter than the end-of-utterance silence.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import grpc
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from speech import pcm16, silence, wer
from stack import Stack
from websockets.sync.client import connect

from voxstack.testing.processes import free_port
from voxstack.v1 import asr_pb2, asr_pb2_grpc, common_pb2

pytestmark = pytest.mark.slow

FIRST = "Tell me a long story about"
SECOND = "a dragon who guards a castle."
WHOLE = f"{FIRST} {SECOND}"
SILENCE_MS = 2000  # the utterance's end: longer than the pause below
PAUSE = 1.2  # seconds: longer than a speculative decode of FIRST takes, shorter than SILENCE_MS
CHUNK = 640  # 20 ms of 16 kHz PCM16


@pytest.fixture(scope="module")
def stack(models_dir, tmp_path_factory) -> Iterator[tuple[Stack, int]]:
    from voxstack.models import DEFAULT_MODELS, pull

    pull(DEFAULT_MODELS["llm"], models_dir)
    llm_metrics = free_port()
    env = {
        "VOXSTACK_ASR__VAD_MIN_SILENCE_MS": str(SILENCE_MS),
        "VOXSTACK_LLM__MAX_TOKENS": "200",  # the speculative reply to a story request is still running when dropped
        "VOXSTACK_LLM__METRICS_PORT": str(llm_metrics),
    }
    running = Stack(models_dir, tmp_path_factory.mktemp("preemption"), env).up()
    yield running, llm_metrics
    running.down()


def paused_question(speech) -> bytes:
    return pcm16(
        np.concatenate([silence(0.3), speech.say(FIRST), silence(PAUSE), speech.say(SECOND), silence(2.6)]),
        to_rate=16000,
    )


def real_time(audio: bytes) -> Iterator[bytes]:
    """``audio`` in 20 ms chunks, each when it would have been spoken."""
    started = time.monotonic()
    for i in range(0, len(audio), CHUNK):
        delay = started + i / 32000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield audio[i : i + CHUNK]


def counter(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def asr_events(address: str, audio: bytes, speculative: bool) -> list[asr_pb2.StreamingRecognizeResponse]:
    config = asr_pb2.RecognitionConfig(
        format=common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=16000),
        speculative_results=speculative,
    )

    def requests() -> Iterator[asr_pb2.StreamingRecognizeRequest]:
        yield asr_pb2.StreamingRecognizeRequest(config=config)
        for chunk in real_time(audio):
            yield asr_pb2.StreamingRecognizeRequest(audio=chunk)

    with grpc.insecure_channel(address) as channel:
        return list(asr_pb2_grpc.AsrStub(channel).StreamingRecognize(requests(), timeout=60))


def test_asr_sends_a_speculative_result_at_a_pause_and_voids_it_when_speech_goes_on(stack, speech) -> None:
    running, _ = stack
    replies = asr_events(running.address("asr"), paused_question(speech), speculative=True)
    kinds = [r.WhichOneof("event") for r in replies]
    assert kinds == ["speech_started", "speculative", "speech_resumed", "speculative", "speech_ended", "final"], kinds
    assert {r.utterance_index for r in replies} == {0}  # the pause did not end the utterance
    first, second = (r.speculative.result.text for r in replies if r.WhichOneof("event") == "speculative")
    assert wer(FIRST, first) <= 0.2, first
    assert "dragon" in second.lower() and second == replies[-1].final.result.text

    # Not asked for: none of it.
    plain = asr_events(running.address("asr"), paused_question(speech), speculative=False)
    assert [r.WhichOneof("event") for r in plain] == ["speech_started", "speech_ended", "final"]


def test_a_mid_sentence_pause_sends_no_reply_and_the_reply_answers_the_whole_question(stack, speech) -> None:
    running, llm_metrics = stack
    core = running.url
    before_core = httpx.get(f"{core}/metrics").text
    before_llm = httpx.get(f"http://127.0.0.1:{llm_metrics}/metrics").text
    received: list[tuple[float, object]] = []
    with connect(f"ws://127.0.0.1:{running.ports['core']}/v1/stream", max_size=None) as ws:
        # No partials: their decodes would compete with the speculative one for the asr.
        config = {"type": "config", "sample_rate": 16000, "session_id": "paused", "interim_results": False}
        ws.send(json.dumps(config))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"

        def read() -> None:
            while True:
                message = ws.recv(timeout=120)
                event = json.loads(message) if isinstance(message, str) else message
                received.append((time.monotonic(), event))
                if isinstance(event, dict) and event["type"] in ("reply_done", "error"):
                    return

        reader = threading.Thread(target=read)
        reader.start()
        for chunk in real_time(paused_question(speech)):
            ws.send(chunk)
        reader.join(120)
    events = [e for _, e in received if isinstance(e, dict)]
    kinds = [e["type"] for e in events]
    assert kinds.count("transcript") == 1, kinds  # one utterance: the pause did not end it
    transcript = kinds.index("transcript")
    assert not {"reply_delta", "audio", "error"} & set(kinds[:transcript]), kinds  # nothing before the real end
    assert kinds[-1] == "reply_done" and "audio" in kinds[transcript:], kinds
    assert "dragon" in events[transcript]["text"].lower()
    assert wer(WHOLE, events[transcript]["text"]) <= 0.2, events[transcript]
    done = events[-1]
    assert done["turn"] == 1  # the dropped speculation was never a turn

    # The reply was written for the whole question: as many prompt tokens as the same words typed.
    with connect(f"ws://127.0.0.1:{running.ports['core']}/v1/stream", max_size=None) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "session_id": "typed"}))
        json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"type": "text", "text": events[transcript]["text"]}))
        while True:
            message = ws.recv(timeout=120)
            if isinstance(message, str) and (typed := json.loads(message))["type"] == "reply_done":
                break
    assert done["prompt_tokens"] == typed["prompt_tokens"]

    after_core = httpx.get(f"{core}/metrics").text
    after_llm = httpx.get(f"http://127.0.0.1:{llm_metrics}/metrics").text
    name = "voxstack_core_speculative_replies_total"
    # The pause's speculation was dropped when speech went on; the final pause's was confirmed and used.
    assert counter(after_core, name, outcome="wasted") > counter(before_core, name, outcome="wasted")
    assert counter(after_core, name, outcome="used") > counter(before_core, name, outcome="used")
    assert done["timings"]["speculation_lead"] > 0
    # The llm saw the dropped reply's call cancelled.
    replies = "voxstack_llm_replies_total"
    assert counter(after_llm, replies, reason="cancelled") > counter(before_llm, replies, reason="cancelled")
