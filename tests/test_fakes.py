"""The scripted fakes behind the real core: they follow their script, and speak each proto as the real services do."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest
from websockets.sync.client import connect

from voxstack.rpc_status import failure_from_error
from voxstack.testing.fakes import FACTORIES, Script, utterance
from voxstack.testing.processes import served, wait_until
from voxstack.v1 import asr_pb2, asr_pb2_grpc, llm_pb2, llm_pb2_grpc, tts_pb2, tts_pb2_grpc


def turn_events(port: int, audio: bytes, config: dict | None = None) -> list[dict]:
    """One WebSocket conversation: ``audio`` sent, the events up to the turn's end (binary frames left out)."""
    with connect(f"ws://127.0.0.1:{port}/v1/stream", max_size=None) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, **(config or {})}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        for i in range(0, len(audio), 3200):
            ws.send(audio[i : i + 3200])
        events = []
        while True:
            message = ws.recv(timeout=30)
            if isinstance(message, str):
                events.append(json.loads(message))
                if events[-1]["type"] in ("reply_done", "error"):
                    return events


def test_a_spoken_turn_follows_the_script(fakes) -> None:
    fakes.script.update(
        asr={"utterances": [{"text": "Is it raining?", "partials": ["Is it"]}]},
        llm={"replies": [{"match": "raining", "text": "No, it is sunny. Take a hat."}]},
    )
    events = turn_events(fakes.ports["core"], utterance(0.6), {"interim_results": True})
    kinds = [e["type"] for e in events]
    assert kinds[0] == "speech_started" and "partial" in kinds, kinds
    assert kinds.index("speech_ended") < kinds.index("transcript") < kinds.index("reply_delta"), kinds
    assert next(e for e in events if e["type"] == "transcript")["text"] == "Is it raining?"
    assert events[-1]["type"] == "reply_done" and events[-1]["text"] == "No, it is sunny. Take a hat."
    assert kinds.count("audio") >= 2  # the reply is spoken in pieces (sentences, or a first clause ahead)
    # What the core sent the llm: the transcript as the user's turn.
    messages = fakes.script.calls("llm")[-1]["request"]["messages"]
    assert messages[-1] == {"role": "user", "content": "Is it raining?"}


def test_the_llm_echoes_without_a_script_and_cuts_at_max_tokens(fakes) -> None:
    with grpc.insecure_channel(fakes.address("llm")) as channel:
        stub = llm_pb2_grpc.LlmStub(channel)
        request = llm_pb2.GenerateRequest(messages=[llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content="one two")])
        replies = list(stub.Generate(request, timeout=10))
        assert "".join(r.delta for r in replies[:-1]) == "You said: one two"
        assert replies[-1].done.finish_reason == llm_pb2.FINISH_REASON_STOP
        request.sampling.max_tokens = 2
        cut = list(stub.Generate(request, timeout=10))
        assert [r.delta for r in cut[:-1]] == ["You ", "said: "]
        assert cut[-1].done.finish_reason == llm_pb2.FINISH_REASON_LENGTH


def test_a_scripted_error_reaches_the_caller_with_its_status_and_reason(fakes) -> None:
    fakes.script.update(tts={"error": {"kind": "Busy", "message": "tts is busy", "reason": "QUEUE_FULL"}})
    with grpc.insecure_channel(fakes.address("tts")) as channel, pytest.raises(grpc.RpcError) as info:
        tts_pb2_grpc.TtsStub(channel).Synthesize(tts_pb2.SynthesizeRequest(text="Hello."), timeout=10)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure_from_error(info.value).reason == "QUEUE_FULL"
    # Through the core: the HTTP status of the same error.
    response = httpx.post(f"{fakes.url}/v1/speak", json={"text": "Hello."}, timeout=10)
    assert response.status_code == 429, response.text


def test_the_tts_checks_input_as_the_real_one_does(fakes) -> None:
    with grpc.insecure_channel(fakes.address("tts")) as channel:
        stub = tts_pb2_grpc.TtsStub(channel)
        for request, reason in [
            (tts_pb2.SynthesizeRequest(text="  "), "EMPTY_TEXT"),
            (tts_pb2.SynthesizeRequest(text="Hi.", voice="nobody"), "UNKNOWN_VOICE"),
        ]:
            with pytest.raises(grpc.RpcError) as info:
                stub.Synthesize(request, timeout=10)
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert failure_from_error(info.value).reason == reason
        chunks = list(stub.SynthesizeStream(tts_pb2.SynthesizeRequest(text="One. Two three."), timeout=10))
        assert [c.span.text for c in chunks] == ["One.", "Two three."] and chunks[-1].last


def test_the_asr_sends_a_speculative_result_at_a_pause_and_resumes(fakes) -> None:
    fakes.script.update(asr={"utterances": [{"text": "Turn on the lights.", "speculative": "Turn on"}]})
    audio = utterance(0.4, after=0.15) + utterance(0.4, before=0.0, after=0.5)
    config = asr_pb2.RecognitionConfig(speculative_results=True)
    config.format.encoding = 1
    config.format.sample_rate_hz = 16000

    def requests():
        yield asr_pb2.StreamingRecognizeRequest(config=config)
        for i in range(0, len(audio), 3200):
            yield asr_pb2.StreamingRecognizeRequest(audio=audio[i : i + 3200])

    with grpc.insecure_channel(fakes.address("asr")) as channel:
        replies = list(asr_pb2_grpc.AsrStub(channel).StreamingRecognize(requests(), timeout=10))
    kinds = [r.WhichOneof("event") for r in replies]
    assert kinds == ["speech_started", "speculative", "speech_resumed", "speculative", "speech_ended", "final"]
    assert replies[1].speculative.result.text == "Turn on"
    assert replies[-1].final.result.text == "Turn on the lights."


def test_an_llm_that_dies_mid_reply_is_restarted_by_the_test_and_serves_again(fakes) -> None:
    fakes.script.update(llm={"default": {"text": "one two three four", "die_after_tokens": 2}})
    request = llm_pb2.GenerateRequest(messages=[llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content="hi")])
    with grpc.insecure_channel(fakes.address("llm")) as channel:
        got = []
        with pytest.raises(grpc.RpcError) as info:
            for reply in llm_pb2_grpc.LlmStub(channel).Generate(request, timeout=10):
                got.append(reply.delta)
    assert got == ["one ", "two "]
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert fakes.procs["llm"].wait(10) != 0
    fakes.script.clear()
    fakes.start("llm")
    fakes.wait("llm")
    with grpc.insecure_channel(fakes.address("llm")) as channel:
        assert list(llm_pb2_grpc.LlmStub(channel).Generate(request, timeout=10))[-1].done.text == "You said: hi"


def test_a_full_llm_queue_is_refused_with_resource_exhausted(tmp_path) -> None:
    """The llm's slots and queue (the service base's Worker, with the llm's settings): one reply written, one
    waiting, the third refused at once. The fake's reply is as slow as scripted, so the order is certain."""
    script = Script(tmp_path / "script.json")
    script.update(llm={"default": {"text": "word " * 20, "token_delay": 0.05}})
    env = {**script.env, "VOXSTACK_LLM__MAX_QUEUE": "1", "VOXSTACK_LLM__PARALLEL": "1"}  # one slot, one place
    with (
        served("llm", env=env, log=tmp_path / "llm.log", factory=FACTORIES["llm"]) as process,
        grpc.insecure_channel(process.address) as channel,
    ):
        stub = llm_pb2_grpc.LlmStub(channel)
        request = llm_pb2.GenerateRequest(messages=[llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content="hi")])
        one = stub.Generate(request, timeout=30)
        assert next(one).delta  # "one" holds the slot
        two = stub.Generate(request, timeout=30)
        # "two" is recorded just before it waits for the slot: then the queue (length 1) is full.
        wait_until(lambda: len(script.calls("llm")) == 2, "the second call waiting")
        with pytest.raises(grpc.RpcError) as info:
            list(stub.Generate(request, timeout=30))
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "llm is busy" in info.value.details()
        assert failure_from_error(info.value).reason == "QUEUE_FULL"
        assert list(one)[-1].WhichOneof("event") == "done"
        assert list(two)[-1].WhichOneof("event") == "done"


def test_a_factory_setting_serves_the_fake_in_the_service_s_place(tmp_path) -> None:
    """How the supervisor runs fakes: the registered name, with NAME.factory set, serves the stand-in."""
    env = {"VOXSTACK_ASR__FACTORY": FACTORIES["asr"]}
    with served("asr", env=env, log=tmp_path / "asr.log") as process, grpc.insecure_channel(process.address) as ch:
        models = asr_pb2_grpc.AsrStub(ch).ListModels(asr_pb2.ListModelsRequest(), timeout=10).models
        assert [m.name for m in models] == ["fake-asr"]
    assert "[dev asr]" in (tmp_path / "asr.log").read_text()  # logged under the service's own name


def test_a_factory_that_is_not_module_colon_callable_is_refused_naming_the_variable() -> None:
    from voxstack.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match="VOXSTACK_TTS__FACTORY"):
        load_settings(tts={"factory": "not a factory"})
