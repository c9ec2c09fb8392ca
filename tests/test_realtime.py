"""``WS /v1/realtime`` through the official `openai` SDK's Realtime client, over the scripted fakes: spoken
turns in PCM at 24 kHz and G.711 at 8 kHz, text-only replies, manual commit, cancel, barge-in with
truncate, items, function calls, bad events. Every server event is checked against the SDK's own type for
it. The real models' turn is in test_realtime_models."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from realtime_client import Event, Session, audio_of, kinds, realtime_sessions
from stack import TEST_LLM, Stack, paused_question
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from voxstack.testing.fakes import quiet, utterance

with warnings.catch_warnings():  # the reference G.711 codec here (CPython's until 3.13)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


@pytest.fixture
def realtime(fakes: Stack) -> Iterator[Callable[..., Session]]:
    yield from realtime_sessions(fakes.url)


def test_a_spoken_turn_in_pcm_gives_transcript_reply_and_24_khz_audio(fakes: Stack, realtime) -> None:
    fakes.script.update(
        asr={"utterances": [{"text": "What is the capital of France?"}]},
        llm={"replies": [{"match": "France", "text": "Paris is the capital. It is lovely."}]},
    )
    session = realtime()
    session.connection.session.update(
        session={
            "type": "realtime",
            "instructions": "Answer in one sentence.",
            "audio": {"input": {"transcription": {"model": "whisper-1"}}},
        }
    )
    updated = session.until("session.updated")[-1]["session"]
    assert updated["instructions"] == "Answer in one sentence."
    assert updated["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    session.speak(utterance(0.8, 24_000))
    events = session.until("response.done")
    order = kinds(events)
    for kind in (
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_audio_transcript.delta",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.output_item.done",
    ):
        assert kind in order, (kind, order)
    assert order.index("input_audio_buffer.speech_stopped") < order.index("response.created")
    heard = next(e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert heard["transcript"] == "What is the capital of France?"
    said = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    assert said["transcript"] == "Paris is the capital. It is lovely."
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["usage"]["output_tokens"] > 0
    assert [o["type"] for o in done["output"]] == ["message"]
    pcm = audio_of(events)
    assert len(pcm) % 2 == 0 and len(pcm) / 2 / 24_000 > 0.2  # 24 kHz PCM16 of both sentences
    request = fakes.script.calls("llm")[-1]["request"]
    assert request["messages"][0] == {"role": "system", "content": "Answer in one sentence."}
    assert request["messages"][-1]["content"] == "What is the capital of France?"
    assert session.next()["type"] == "rate_limits.updated"


def test_g711_in_and_out_at_8_khz(fakes: Stack, realtime) -> None:
    fakes.script.update(asr={"utterances": [{"text": "Hello there."}]}, llm={"replies": [{"text": "Hi. Nice day."}]})
    for kind, encode, decode in (
        ("audio/pcmu", lambda b: audioop.lin2ulaw(b, 2), lambda b: audioop.ulaw2lin(b, 2)),
        ("audio/pcma", lambda b: audioop.lin2alaw(b, 2), lambda b: audioop.alaw2lin(b, 2)),
    ):
        session = realtime()
        session.connection.session.update(
            session={
                "type": "realtime",
                "audio": {"input": {"format": {"type": kind}}, "output": {"format": {"type": kind}}},
            }
        )
        assert session.until("session.updated")[-1]["session"]["audio"]["output"]["format"]["type"] == kind
        session.speak(utterance(0.8, 8_000), 8_000, encode)
        events = session.until("response.done")
        g711 = audio_of(events)
        pcm = decode(g711)
        assert len(pcm) == 2 * len(g711) and len(g711) / 8_000 > 0.2  # one byte a sample at 8 kHz
        assert max(abs(int.from_bytes(pcm[i : i + 2], "little", signed=True)) for i in range(0, len(pcm), 2)) > 1000


def test_manual_commit_with_turn_detection_off_and_a_text_only_reply(fakes: Stack, realtime) -> None:
    fakes.script.update(asr={"utterances": [{"text": "Tell me a joke."}]}, llm={"replies": [{"text": "Why not. Ha."}]})
    session = realtime()
    session.connection.session.update(
        session={"type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}
    )
    assert session.until("session.updated")[-1]["session"]["audio"]["input"]["turn_detection"] is None
    session.speak(utterance(0.8, 24_000))
    session.connection.input_audio_buffer.commit()
    events = session.until("conversation.item.done")
    assert "input_audio_buffer.committed" in kinds(events) and "response.created" not in kinds(events)
    assert events[-1]["item"]["content"][0]["transcript"] == "Tell me a joke."
    session.connection.response.create()
    events = session.until("response.done")
    assert "response.output_audio.delta" not in kinds(events)
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "Why not. Ha."
    assert next(e for e in events if e["type"] == "response.output_text.done")["text"] == "Why not. Ha."
    # An empty buffer cannot be committed; the session goes on.
    session.connection.input_audio_buffer.commit()
    error = session.until("error")[-1]["error"]
    assert error["code"] == "input_audio_buffer_commit_empty"


SEMANTIC = {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": {}}}}


def semantic(eagerness: str) -> dict[str, Any]:
    session = json.loads(json.dumps(SEMANTIC))
    session["audio"]["input"]["turn_detection"] = {"type": "semantic_vad", "eagerness": eagerness}
    return session


def until_asked(fakes: Stack, calls: int) -> float:
    """When (time.monotonic) the llm has been asked ``calls`` times."""
    deadline = time.monotonic() + 10
    while len(fakes.script.calls("llm")) < calls:
        assert time.monotonic() < deadline, fakes.script.calls("llm")
        time.sleep(0.01)
    return time.monotonic()


def test_semantic_vad_hears_a_speaker_who_goes_on_after_unfinished_words_as_one_item(fakes: Stack, realtime) -> None:
    """The asr's turn model ends the utterance at a pause for thought; the llm finds the words unfinished:
    nothing is committed, and the speaker who goes on is heard in the same item, answered once."""
    fakes.script.update(**paused_question())
    session = realtime()
    session.connection.session.update(session=semantic("low"))
    session.until("session.updated")
    session.speak(utterance(0.8, 24_000))
    started = session.until("input_audio_buffer.speech_started")[-1]
    until_asked(fakes, 1)  # the words of the pause are being judged
    session.speak(utterance(0.8, 24_000, before=0.0))
    events = session.until("response.done")
    order = kinds(events)
    assert "input_audio_buffer.speech_started" not in order, order
    assert order.count("input_audio_buffer.speech_stopped") == order.count("input_audio_buffer.committed") == 1, order
    committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
    assert committed["item_id"] == started["item_id"]
    heard = [e["transcript"] for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert heard == ["What is the best way to cook rice?"]
    said = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    assert said["transcript"] == "Boil it in salted water."
    # The words are judged in the response's own call: the whole question's goes on as its reply.
    asked = [(c["request"]["messages"][-1]["content"], c["request"]["end_of_turn"]) for c in fakes.script.calls("llm")]
    assert asked == [("What is the best way", True), ("What is the best way to cook rice?", True)]


@pytest.mark.parametrize("whole", [0.9, 0.02])
def test_semantic_vad_commits_whole_words_at_once_and_unfinished_ones_after_a_longer_silence(
    fakes: Stack, realtime, whole: float
) -> None:
    """Eagerness low doubles core.unfinished_silence_ms (1.5 s): unfinished words nobody goes on with are
    committed and answered about 3 s after the asr's end; whole ones at once. server_vad holds nothing."""
    fakes.script.update(
        asr={"utterances": [{"text": "Tell me a story", "rule": "turn_model"}] * 2},
        llm={"replies": [{"text": "Once upon a time.", "end_of_turn": whole}]},
    )
    session = realtime()
    session.connection.session.update(session=semantic("low"))
    session.until("session.updated")
    session.speak(utterance(0.8, 24_000))
    asked = until_asked(fakes, 1)
    session.until("input_audio_buffer.committed")
    waited = time.monotonic() - asked
    session.until("response.done")
    # A wait the core makes on purpose: only its lower bound is certain; the other case is far off it.
    assert waited > 2.5 if whole < 0.1 else waited < 1.0, waited
    # Whole words: the judging call was the response's. Unfinished: it was closed, the response asked anew.
    assert [c["request"]["end_of_turn"] for c in fakes.script.calls("llm")] == (
        [True, False] if whole < 0.1 else [True]
    )
    # server_vad (the default) does not ask.
    session.connection.session.update(
        session={"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
    )
    session.until("session.updated")
    session.speak(utterance(0.8, 24_000))
    session.until("response.done")
    assert [c["request"]["end_of_turn"] for c in fakes.script.calls("llm")][-1] is False


#: Judged whole enough to hold no turn, not enough to end one at a pause (the test preset's thresholds).
BETWEEN = (TEST_LLM.turn_words_threshold + TEST_LLM.turn_words_end_threshold) / 2


@pytest.mark.parametrize(("whole", "rule"), [(0.9, "words"), (BETWEEN, "silence")])
def test_semantic_vad_ends_a_pause_the_turn_model_did_not_when_its_words_are_whole(
    fakes: Stack, realtime, whole: float, rule: str
) -> None:
    """At a pause the asr's turn model did not end, the words so far (its speculative result), judged whole
    enough, end the utterance there (rule words); judged less surely, the silence rule ends it. Either way the
    judging call is the response's."""
    question = "What is frozen water called?"
    fakes.script.update(
        asr={"speculative_after": 0.1, "end_silence": 1.0, "utterances": [{"text": question, "rule": "silence"}]},
        llm={"replies": [{"text": "It is called ice.", "end_of_turn": whole}]},
    )
    session = realtime()
    session.connection.session.update(session=semantic("high"))
    session.until("session.updated")
    session.speak(utterance(0.8, 24_000, after=0.3))  # a pause: its speculative result, not the silence rule
    until_asked(fakes, 1)  # the pause's words are being judged
    if rule == "silence":
        time.sleep(0.5)  # the judgement's time to end the utterance, were it whole enough
        session.speak(quiet(1.0, 24_000))
    events = session.until("response.done")
    order = kinds(events)
    assert order.count("input_audio_buffer.speech_stopped") == order.count("input_audio_buffer.committed") == 1, order
    heard = [e["transcript"] for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert heard == [question]
    said = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    assert said["transcript"] == "It is called ice."
    asked = [(c["request"]["messages"][-1]["content"], c["request"]["end_of_turn"]) for c in fakes.script.calls("llm")]
    # The pause's judgement stands for the final's (the same words, whichever rule ended them), and its call goes
    # on as the response's.
    assert asked == [(question, True)], (asked, order)


def test_response_cancel_ends_the_response_as_cancelled(fakes: Stack, realtime) -> None:
    fakes.script.update(llm={"replies": [{"text": "One two three. " * 30, "token_delay": 0.05}]})
    session = realtime()
    session.connection.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Count."}]}
    )
    session.until("conversation.item.done")
    session.connection.response.create()
    session.until("response.output_audio.delta")
    session.connection.response.cancel()
    done = session.until("response.done")[-1]["response"]
    assert done["status"] == "cancelled" and done["status_details"]["reason"] == "client_cancelled"
    session.connection.response.cancel()  # nothing left to cancel
    assert session.until("error")[-1]["error"]["code"] == "response_cancel_not_active"


def test_speech_during_a_reply_cancels_it_and_truncate_keeps_what_was_heard(fakes: Stack, realtime) -> None:
    fakes.script.update(
        asr={"utterances": [{"text": "Tell me a story."}, {"text": "Stop."}]},
        llm={
            "replies": [
                {"match": "story", "text": "Once there was a fox. It ran far away. " * 6, "token_delay": 0.04},
                {"match": "Stop", "text": "Okay."},
            ]
        },
    )
    session = realtime()
    session.speak(utterance(0.8, 24_000))
    first = session.until("response.output_audio.delta")
    item_id = first[-1]["item_id"]
    session.speak(utterance(0.8, 24_000, before=0.0))
    events = session.until("response.done")
    assert "input_audio_buffer.speech_started" in kinds(events)
    done = events[-1]["response"]
    assert done["status"] == "cancelled" and done["status_details"]["reason"] == "turn_detected"
    kept = done["output"][0]["content"][0]["transcript"]
    assert kept and len(kept) < len("Once there was a fox. It ran far away. " * 6)
    session.connection.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=1)
    truncated = session.until("conversation.item.truncated")[-1]
    assert truncated["item_id"] == item_id and truncated["audio_end_ms"] == 1
    session.connection.conversation.item.retrieve(item_id=item_id)
    retrieved = session.until("conversation.item.retrieved")[-1]["item"]
    assert retrieved["content"][0]["transcript"] == ""  # nothing was played to its end
    assert session.until("response.done")[-1]["response"]["status"] == "completed"  # the answer to "Stop."


def test_a_function_call_answered_by_the_client_and_the_reply_after_it(fakes: Stack, realtime) -> None:
    fakes.script.update(
        llm={
            "replies": [
                {"match": "weather", "tool_result": "sunny", "text": "It is sunny in Paris."},
                {"match": "weather", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            ]
        }
    )
    session = realtime()
    weather = {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    session.connection.session.update(session={"type": "realtime", "tools": [weather], "tool_choice": "auto"})
    assert session.until("session.updated")[-1]["session"]["tools"][0]["name"] == "get_weather"
    session.connection.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What's the weather?"}]}
    )
    session.connection.response.create()
    events = session.until("response.done")
    call = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    assert events[-1]["response"]["output"][0]["type"] == "function_call"
    assert fakes.script.calls("llm")[-1]["request"]["tools"] == ["get_weather"]
    session.connection.conversation.item.create(
        item={"type": "function_call_output", "call_id": call["call_id"], "output": '{"sky": "sunny"}'}
    )
    session.until("conversation.item.done")
    session.connection.response.create()
    events = session.until("response.done")
    said = next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
    assert said == "It is sunny in Paris."
    roles = [m["role"] for m in fakes.script.calls("llm")[-1]["request"]["messages"]]
    assert roles[-3:] == ["user", "assistant", "tool"]


def test_audio_items_out_of_band_responses_clearing_output_and_failures(fakes: Stack, realtime) -> None:
    fakes.script.update(
        asr={"recognize": {"text": "Spoken item."}},
        llm={
            "replies": [
                {"match": "fail", "error": {"kind": "InternalError", "message": "scripted"}},
                {"match": "slow", "text": "Slowly now. " * 30, "token_delay": 0.05},
                {"match": "Classify", "text": "Positive."},
            ]
        },
    )
    session = realtime()
    audio = base64.b64encode(utterance(0.5, 24_000)).decode()
    session.connection.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": audio}]}
    )
    done = session.until("conversation.item.done")[-1]["item"]
    assert done["content"][0]["transcript"] == "Spoken item." and "audio" not in done["content"][0]
    # Out of band: answers its own input, and the conversation does not change.
    classify = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Classify: yay"}]}
    session.connection.response.create(
        response={"conversation": "none", "input": [classify], "output_modalities": ["text"], "metadata": {"k": "v"}}
    )
    events = session.until("response.done")
    assert "conversation.item.added" not in kinds(events)
    assert events[-1]["response"]["metadata"] == {"k": "v"} and events[-1]["response"]["conversation_id"] is None
    assert [m["content"] for m in fakes.script.calls("llm")[-1]["request"]["messages"] if m["role"] == "user"] == [
        "Classify: yay"
    ]
    # output_audio_buffer.clear stops the response being spoken.
    session.connection.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Go slow."}]}
    )
    session.connection.response.create()
    session.until("response.output_audio.delta")
    session.connection.send({"type": "output_audio_buffer.clear"})
    events = session.until("output_audio_buffer.cleared")
    assert next(e for e in events if e["type"] == "response.done")["response"]["status"] == "cancelled"
    # A failing llm: the response fails, named; the session goes on.
    session.connection.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Please fail."}]}
    )
    session.connection.response.create()
    failed = session.until("response.done")[-1]["response"]
    error = failed["status_details"]["error"]
    assert failed["status"] == "failed" and error["code"] == "llm_internal" and "llm failed" in error["message"]


def test_a_transcription_that_fails_is_reported_on_its_item(fakes: Stack, realtime) -> None:
    fakes.script.update(asr={"recognize": {"error": {"kind": "InternalError", "message": "scripted"}}})
    session = realtime()
    session.connection.session.update(
        session={"type": "realtime", "audio": {"input": {"turn_detection": None, "transcription": {}}}}
    )
    session.until("session.updated")
    session.speak(utterance(0.5, 24_000))
    session.connection.input_audio_buffer.commit()
    events = session.until("conversation.item.done")
    failed = next(e for e in events if e["type"] == "conversation.item.input_audio_transcription.failed")
    assert failed["item_id"] == events[-1]["item"]["id"] and "asr" in failed["error"]["message"], failed
    session.connection.session.update(session={"type": "realtime", "instructions": "Still here."})
    assert session.until("session.updated")[-1]["session"]["instructions"] == "Still here."


def test_items_are_added_retrieved_deleted_and_kept_across_a_reconnect(fakes: Stack, realtime) -> None:
    session = realtime()
    session.connection.session.update(session={"type": "realtime", "instructions": "Be brief."})
    session_id = session.until("session.updated")[-1]["session"]["id"]
    text = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Remember: blue."}]}
    session.connection.conversation.item.create(item={"id": "item_one", **text})
    assert session.until("conversation.item.added")[-1]["item"]["id"] == "item_one"
    session.connection.conversation.item.create(item={"id": "item_two", **text}, previous_item_id="root")
    assert session.until("conversation.item.added")[-1]["previous_item_id"] is None
    session.connection.conversation.item.delete(item_id="item_two")
    assert session.until("conversation.item.deleted")[-1]["item_id"] == "item_two"
    session.connection.conversation.item.retrieve(item_id="item_two")
    assert session.until("error")[-1]["error"]["code"] == "item_not_found"
    again = realtime(extra_query={"session_id": session_id})
    assert again.seen[0]["session"]["instructions"] == "Be brief."  # its settings come back too
    again.connection.conversation.item.retrieve(item_id="item_one")
    assert again.until("conversation.item.retrieved")[-1]["item"]["content"][0]["text"] == "Remember: blue."


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ({"type": "session.teleport"}, "invalid_event_type", "type"),
        ({"type": "session.update", "session": {"instructions": 7}}, "invalid_value", "session.instructions"),
        ({"type": "session.update", "session": {"audio": {"output": {"voice": "nobody"}}}}, "invalid_value",
         "session.audio.output.voice"),
        ({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}},
         "invalid_value", "session.audio.input.format.rate"),
        ({"type": "session.update", "session": {"tools": [{"type": "function", "name": "bad name!"}]}}, "invalid_value",
         "session.tools"),
        ({"type": "input_audio_buffer.append", "audio": "not base64!"}, "invalid_value", "audio"),
        ({"type": "input_audio_buffer.append", "audio": "AA=="}, "invalid_value", "audio"),  # 1 byte: half a sample
        ({"type": "conversation.item.truncate", "item_id": "nope", "content_index": 0, "audio_end_ms": 5},
         "item_not_found", "item_id"),
        ({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c9", "output": "x"}},
         "invalid_value", "item.call_id"),
        ({"type": "response.create", "response": {"max_output_tokens": 0}}, "invalid_value",
         "response.max_output_tokens"),
        ({"type": "response.cancel"}, "response_cancel_not_active", None),
    ],
)  # fmt: skip
def test_bad_events_answer_errors_and_the_session_goes_on(realtime, event: Event, code: str, param: str | None) -> None:
    session = realtime()
    session.connection.send({**event, "event_id": "mine"})
    error = session.until("error")[-1]["error"]
    assert error["code"] == code and error["event_id"] == "mine", error
    assert param is None or (error["param"] or "").startswith(param), error
    session.connection.session.update(session={"type": "realtime", "instructions": "Still here."})
    assert session.until("session.updated")[-1]["session"]["instructions"] == "Still here."


def test_oversized_and_flooding_clients(fakes: Stack) -> None:
    url = f"ws://127.0.0.1:{fakes.ports['core']}/v1/realtime?model=x"

    def closed_with(ws: Any) -> int | None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                ws.recv(timeout=5)
            except TimeoutError:
                continue
            except Exception:
                break
        return ws.close_code

    with connect(url, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
        ws.send(b"\x00\x01")
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == "invalid_event"
        ws.send("{not json")
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == "invalid_json"
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 300_000}))
        assert closed_with(ws) == 1009  # over ws_max_frame_bytes, as documented
    with connect(url, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
        with contextlib.suppress(ConnectionClosed):  # 10 MB: closed, maybe reset, while it is still being sent
            ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 10_000_000}))
        assert closed_with(ws) in (1009, 1006)
    with connect(url, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
        ws.send(json.dumps({"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "session.updated"
        with contextlib.suppress(ConnectionClosed):
            for _ in range(3000):  # a sample each, answered by nothing: far over ws_max_frame_rate
                ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "AAA="}))
        error = json.loads(ws.recv(timeout=10))["error"]
        assert error["code"] == "too_many_messages", error
        assert closed_with(ws) == 1008
    with connect(url) as ws:  # the core is still there
        assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
