"""Preemptive replies: the asr's speculative transcript at a pause, the core's reply held until the end is confirmed.

The real asr's part is sent in real time (a pause only exists in real time for
a streaming asr), with a mid-sentence pause longer than the speculative decode
takes but shorter than the end-of-utterance silence. The core's part (a
speculation dropped when speech goes on, another confirmed at the end) runs
on the scripted fakes, where the order of events is the script's, not the
machine's speed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from voxstack.testing.fakes import loud, quiet
from voxstack.testing.processes import ServiceProcess, served, wait_until
from voxstack.testing.speech import pcm16, silence, sounds_like
from voxstack.v1 import asr_pb2, asr_pb2_grpc, common_pb2

FIRST = "Tell me a long story about"
SECOND = "a dragon who guards a castle."
WHOLE = f"{FIRST} {SECOND}"
SILENCE_MS = 2000  # the utterance's end: longer than the pause below
PAUSE = 1.2  # seconds: longer than a speculative decode of FIRST takes, shorter than SILENCE_MS
CHUNK = 640  # 20 ms of 16 kHz PCM16


@pytest.fixture(scope="module")
def asr(models_dir, tmp_path_factory) -> Iterator[ServiceProcess]:
    env = {"VOXSTACK_MODELS_DIR": str(models_dir), "VOXSTACK_ASR__VAD_MIN_SILENCE_MS": str(SILENCE_MS)}
    with served("asr", env=env, log=tmp_path_factory.mktemp("preemption") / "asr.log") as process:
        yield process


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


def asr_events(
    address: str, audio: bytes, speculative: bool, *, paced: bool = True
) -> list[asr_pb2.StreamingRecognizeResponse]:
    config = asr_pb2.RecognitionConfig(
        format=common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=16000),
        speculative_results=speculative,
    )

    def requests() -> Iterator[asr_pb2.StreamingRecognizeRequest]:
        yield asr_pb2.StreamingRecognizeRequest(config=config)
        for chunk in real_time(audio) if paced else (audio[i : i + CHUNK] for i in range(0, len(audio), CHUNK)):
            yield asr_pb2.StreamingRecognizeRequest(audio=chunk)

    with grpc.insecure_channel(address) as channel:
        return list(asr_pb2_grpc.AsrStub(channel).StreamingRecognize(requests(), timeout=60))


@pytest.mark.slow
def test_asr_sends_a_speculative_result_at_a_pause_and_voids_it_when_speech_goes_on(asr, speech) -> None:
    replies = asr_events(asr.address, paused_question(speech), speculative=True)
    kinds = [r.WhichOneof("event") for r in replies]
    # At the end, a speculative result comes only if its decode finished before the turn was ended.
    assert kinds[:3] == ["speech_started", "speculative", "speech_resumed"], kinds
    assert kinds[3:] in (["speculative", "speech_ended", "final"], ["speech_ended", "final"]), kinds
    assert {r.utterance_index for r in replies} == {0}  # the pause did not end the utterance
    first, *second = (r.speculative.result.text for r in replies if r.WhichOneof("event") == "speculative")
    assert sounds_like(FIRST, first, 0.2), first
    assert "dragon" in replies[-1].final.result.text.lower()
    assert second in ([], [replies[-1].final.result.text])

    # Not asked for: none of it (the utterance's ends are in audio time: no need to wait for it).
    plain = asr_events(asr.address, paused_question(speech), speculative=False, paced=False)
    assert [r.WhichOneof("event") for r in plain] == ["speech_started", "speech_ended", "final"]


def test_a_mid_sentence_pause_sends_no_reply_and_the_reply_answers_the_whole_question(fakes) -> None:
    fakes.script.update(
        asr={"utterances": [{"text": WHOLE, "speculative": [FIRST, WHOLE], "final_delay": 0.3}]},
        llm={
            "replies": [  # the one to FIRST is still being written when speech goes on, on a busy machine too
                {
                    "match": f"{FIRST}$",
                    "text": "Once upon a time a dragon guarded a castle. " * 30,
                    "token_delay": 0.05,
                    "end_of_turn": 0.01,  # words that do not end: they do not end the pause either
                }
            ],
            "default": {"text": "Once upon a time a dragon guarded a castle. " * 4, "token_delay": 0.05},
        },
    )
    core = fakes.url
    before = httpx.get(f"{core}/metrics").text
    with connect(f"ws://127.0.0.1:{fakes.ports['core']}/v1/stream", max_size=None) as ws:
        config = {"type": "config", "sample_rate": 16000, "session_id": "paused", "interim_results": False}
        ws.send(json.dumps(config))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        ws.send(quiet(0.2) + loud(0.6) + quiet(0.2))  # a pause: long enough for a guess, too short for an end
        # The core asks for a reply to the guess (held, not sent) ...
        wait_until(lambda: len(fakes.script.calls("llm")) == 1, "the speculative reply's llm call")
        ws.send(loud(0.6) + quiet(0.8))  # ... and the speaker goes on, then stops
        events = []
        while not events or events[-1]["type"] not in ("reply_done", "error"):
            message = ws.recv(timeout=30)
            if isinstance(message, str):
                events.append(json.loads(message))
    kinds = [e["type"] for e in events]
    assert kinds.count("transcript") == 1, kinds  # one utterance: the pause did not end it
    transcript = kinds.index("transcript")
    assert not {"reply_delta", "audio", "error"} & set(kinds[:transcript]), kinds  # nothing before the real end
    assert kinds[-1] == "reply_done" and "audio" in kinds[transcript:], kinds
    assert events[transcript]["text"] == WHOLE
    done = events[-1]
    assert done["turn"] == 1  # the dropped speculation was never a turn
    # Two llm calls: the dropped guess's, then the one for the whole question, which was used.
    calls = [c["request"]["messages"][-1]["content"] for c in fakes.script.calls("llm")]
    assert calls == [FIRST, WHOLE], calls

    # The reply was written for the whole question: as many prompt tokens as the same words typed.
    with connect(f"ws://127.0.0.1:{fakes.ports['core']}/v1/stream", max_size=None) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "session_id": "typed"}))
        json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"type": "text", "text": events[transcript]["text"]}))
        while True:
            message = ws.recv(timeout=30)
            if isinstance(message, str) and (typed := json.loads(message))["type"] == "reply_done":
                break
    assert done["prompt_tokens"] == typed["prompt_tokens"], fakes.script.calls("llm")

    after = httpx.get(f"{core}/metrics").text
    name = "voxstack_core_speculative_replies_total"
    # The pause's speculation was dropped when speech went on; the final pause's was confirmed and used.
    assert counter(after, name, outcome="wasted") == counter(before, name, outcome="wasted") + 1
    assert counter(after, name, outcome="used") == counter(before, name, outcome="used") + 1
    assert done["timings"]["speculation_lead"] > 0
    # The llm saw the dropped reply's call cancelled (its service base logs each call's status).
    log = fakes.logs / "llm.log"
    wait_until(lambda: "/voxstack.v1.Llm/Generate CANCELLED" in log.read_text(), "the cancelled llm call")
