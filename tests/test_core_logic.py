"""The core's own logic end to end over the scripted fakes: barge-in, a new asr mid-conversation, backends that
hang, die or go away, bad requests. The real core process on uvicorn; what the models would say is scripted."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from conversation import close_code, open_conversation, read_until, send_speech, typed_turn, ws_collect
from stack import Stack, paused_question
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from voxstack.audio import wav_bytes
from voxstack.core.drain import RECONNECT_REASON
from voxstack.core.turn import REACTION_SECONDS
from voxstack.testing.fakes import quiet, utterance
from voxstack.testing.processes import voxstack_command

UPLOAD_LIMIT = 2 * 1024 * 1024
LLM_TIMEOUT = 2
# A turn whose words sound unfinished is taken after this much silence (1.5 s by default; long here, so that a
# test speaks on well inside it). The asr's turn model ends a turn after 200 ms of it by default.
UNFINISHED_MS, TURN_SILENCE_MS = 2500, 200
HOLD = (UNFINISHED_MS - TURN_SILENCE_MS) / 1000  # at least: the hold also covers how late speech is reported


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    # Its own fakes: these tests stop, kill and freeze them, and need the core's limits below.
    env = {
        "VOXSTACK_CORE__MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "VOXSTACK_CORE__LLM_TIMEOUT": str(LLM_TIMEOUT),
        "VOXSTACK_CORE__UNFINISHED_SILENCE_MS": str(UNFINISHED_MS),
        "VOXSTACK_ASR__TURN_SILENCE_MS": str(TURN_SILENCE_MS),
        # The words' judgements the scripts give are read against these, whatever the llm preset's.
        "VOXSTACK_CORE__TURN_WORDS_THRESHOLD": "0.1",
        "VOXSTACK_CORE__TURN_WORDS_END_THRESHOLD": "0.5",
    }
    logs = tmp_path_factory.mktemp("core-logic")
    running = Stack(logs, logs, env, fakes=True).up()
    yield running
    running.down()


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    stack.script.clear()
    with httpx.Client(base_url=stack.url, timeout=60) as c:
        yield c


def question_wav() -> bytes:
    return wav_bytes(utterance(0.8), 16_000)


def test_websocket_moves_to_a_new_asr_when_the_old_one_stops(stack, client) -> None:
    """What a dev reload of asr does to an open conversation: nothing the client can see."""
    first, second = "Please turn on the kitchen lights.", "What is the weather like tomorrow?"
    stack.script.update(asr={"utterances": [{"text": first}, {"text": second}]})
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "interim_results": False}))
        json.loads(ws.recv(timeout=10))
        send_speech(ws, utterance(0.8))
        ws_collect(ws, lambda e: e["type"] == "reply_done")

        # A second asr on the same port (dev mode: SO_REUSEPORT), then the first one stops.
        log = stack.logs / "asr.log"
        started = log.read_text().count("SERVING on")
        old = stack.procs["asr"]
        stack.start("asr")
        deadline = time.monotonic() + 120
        while log.read_text().count("SERVING on") == started:
            assert time.monotonic() < deadline and stack.procs["asr"].poll() is None, log.read_text()
            time.sleep(0.05)
        old.send_signal(signal.SIGTERM)
        assert old.wait(30) == 0

        # The new asr's stream starts at its first utterance: the script's first text again.
        send_speech(ws, utterance(0.8, before=0.0))
        events = [e for e in ws_collect(ws, lambda e: e["type"] in ("transcript", "error")) if isinstance(e, dict)]
        assert events[-1]["type"] == "transcript", events
        assert events[-1]["utterance"] == 1  # one numbering across both asr streams
        assert events[-1]["text"] == first
        ws_collect(ws, lambda e: e["type"] == "reply_done")
    assert "continuing on a new stream" in (stack.logs / "core.log").read_text()


def test_websocket_barge_in_cancels_the_reply(stack, client) -> None:
    stack.script.update(
        asr={"utterances": [{"text": "Tell me a long story about a dragon."}, {"text": "What time is it right now?"}]},
        llm={
            "replies": [
                {"match": "dragon", "text": "Once upon a time there was a dragon. " * 10, "token_delay": 0.05},
                {"match": "time", "text": "It is noon."},
            ]
        },
    )
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
        json.loads(ws.recv(timeout=10))
        send_speech(ws, utterance(0.8))
        ws_collect(ws, lambda e: e["type"] == "audio")
        time.sleep(REACTION_SECONDS + 0.3)
        # Speak again while the first reply is heard and still being produced.
        send_speech(ws, utterance(0.8, before=0.0))
        events = ws_collect(ws, lambda e: e["type"] == "reply_done")
        dicts = [e for e in events if isinstance(e, dict)]
        kinds = [e["type"] for e in dicts]
        assert "barge_in" in kinds
        after = kinds.index("barge_in")
        assert all(e.get("turn") != 1 for e in dicts[after:] if e["type"] in ("audio", "reply_delta", "reply_done"))
        assert dicts[-1]["turn"] >= 2 and dicts[-1]["text"] == "It is noon."  # a later turn finished; not the first
    # The reply the speaker heard part of is not asked for again: the new turn is what they said after it.
    assert stack.script.calls("llm")[-1]["request"]["messages"][-1]["content"] == "What time is it right now?"


def test_a_reply_is_first_heard_at_its_first_phrase_break_spoken_as_going_on(stack, client) -> None:
    """The first piece ends at the first phrase break (core.first_phrase_words, on by default): the tts is asked
    for it as a phrase that goes on (a comma), the client gets its text as written."""
    stack.script.update(llm={"replies": [{"match": "week", "text": "There are seven days in a week. Sunday is one."}]})
    with open_conversation(stack.ports["core"], "first-phrase") as ws:
        events = typed_turn(ws, "How many days are in a week?")
    assert [e["text"] for e in events if e["type"] == "audio"] == [
        "There are seven days",
        "in a week.",
        "Sunday is one.",
    ]
    spoken = [c["request"]["text"] for c in stack.script.calls("tts")]
    assert spoken == ["There are seven days,", "in a week.", "Sunday is one."]


def test_a_speaker_who_goes_on_before_the_reply_is_heard_gets_one_answer_to_all_of_it(stack, client) -> None:
    """The turn ends at a pause (the asr's guess), the speaker goes on before any reply audio: that turn is
    withdrawn and the next one answers both parts as one question, once."""
    stack.script.update(
        asr={
            "speculative_after": 60,
            "utterances": [
                {"text": "What is the capital"},
                # The asr decodes both parts as one when asked (JoinPrevious): its own words for the whole.
                {"text": "of France?", "joined_text": "What is the capital of France, please?"},
            ],
        },
        llm={
            "replies": [
                {"match": "capital of France", "text": "Paris is the capital."},
                {"match": "capital$", "text": "Which country do you mean?", "first_token_delay": 3.0},
            ]
        },
    )
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "session_id": "hesitation-joined"}))
        json.loads(ws.recv(timeout=10))
        send_speech(ws, utterance(0.8))
        ws_collect(ws, lambda e: e["type"] == "transcript")
        deadline = time.monotonic() + 10
        while not stack.script.calls("llm"):  # the first turn is under way, nothing of it heard yet
            assert time.monotonic() < deadline, "the first turn asked the llm nothing"
            time.sleep(0.02)
        send_speech(ws, utterance(0.8, before=0.0))
        events = [e for e in ws_collect(ws, lambda e: e["type"] == "reply_done") if isinstance(e, dict)]
        ws.send(json.dumps({"type": "text", "text": "And of Spain?"}))
        ws_collect(ws, lambda e: e["type"] == "reply_done")
    kinds = [e["type"] for e in events]
    assert {"type": "barge_in", "turn": 1} in events, events
    assert [e["text"] for e in events if e["type"] == "transcript"] == ["What is the capital of France, please?"]
    assert not any(e.get("turn") == 1 for e in events if e["type"] in ("audio", "reply_delta", "reply_done"))
    done = events[-1]
    assert done["turn"] == 2 and done["text"] == "Paris is the capital.", events
    assert kinds.count("reply_done") == 1
    calls = [c["request"]["messages"] for c in stack.script.calls("llm")]
    whole = "What is the capital of France, please?"
    assert [m[-1]["content"] for m in calls] == ["What is the capital", whole, "And of Spain?"]
    # The history holds the question once, whole.
    said = [m["content"] for m in calls[-1] if m["role"] in ("user", "assistant")]
    assert said == [whole, "Paris is the capital.", "And of Spain?"]


def test_a_speaker_who_goes_on_as_the_first_audio_goes_out_gets_one_answer_too(stack, client) -> None:
    """Speech that starts too soon after the reply's first audio to be a reaction to it goes on with the
    question: that reply is cut short (barge_in) and the whole question is answered."""
    stack.script.update(
        asr={"speculative_after": 60, "utterances": [{"text": "Can you remind me"}, {"text": "to call my sister?"}]},
        llm={
            "replies": [
                {"match": "remind me to call", "text": "I will remind you."},
                {"match": "remind me$", "text": "Sure, I can. " * 20, "token_delay": 0.05},
            ]
        },
    )
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
        json.loads(ws.recv(timeout=10))
        send_speech(ws, utterance(0.8))
        ws_collect(ws, lambda e: e["type"] == "audio")  # "Sure," goes out; the speaker is already going on
        send_speech(ws, utterance(0.8, before=0.0))
        events = [e for e in ws_collect(ws, lambda e: e["type"] == "reply_done") if isinstance(e, dict)]
    assert {"type": "barge_in", "turn": 1} in events, events
    assert events[-1]["turn"] == 2 and events[-1]["text"] == "I will remind you.", events
    asked = [c["request"]["messages"][-1]["content"] for c in stack.script.calls("llm")]
    assert asked == ["Can you remind me", "Can you remind me to call my sister?"]


def test_a_turn_the_turn_model_ended_on_unfinished_words_is_not_taken_when_the_speaker_goes_on(stack, client) -> None:
    """The turn model calls a pause for thought the end; the llm judges the words unfinished: nothing of that
    turn reaches the client (no transcript, no barge_in), and the speaker who goes on gets one turn for all."""
    script = paused_question()
    script["asr"]["speculative_after"] = 60
    stack.script.update(**script)
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
        json.loads(ws.recv(timeout=10))
        send_speech(ws, utterance(0.8))
        first = ws_collect(ws, lambda e: e["type"] == "speech_ended")
        deadline = time.monotonic() + 10
        while not stack.script.calls("llm"):  # the first part is being answered, held
            assert time.monotonic() < deadline, "the first part asked the llm nothing"
            time.sleep(0.02)
        send_speech(ws, utterance(0.8, before=0.0))
        events = [e for e in first + ws_collect(ws, lambda e: e["type"] == "reply_done") if isinstance(e, dict)]
    kinds = [e["type"] for e in events]
    assert "barge_in" not in kinds, events
    assert [e["text"] for e in events if e["type"] == "transcript"] == ["What is the best way to cook rice?"]
    assert [e["rule"] for e in events if e["type"] == "speech_ended"] == ["turn_model", "turn_model"]
    assert {e.get("turn") for e in events if e["type"] in ("audio", "reply_delta", "reply_done")} == {1}, events
    assert events[-1]["text"] == "Boil it in salted water.", events
    asked = [(c["request"]["messages"][-1]["content"], c["request"]["end_of_turn"]) for c in stack.script.calls("llm")]
    assert asked == [("What is the best way", True), ("What is the best way to cook rice?", True)]


def test_unfinished_words_wait_for_the_silence_rule_and_whole_words_do_not(stack, client) -> None:
    """A turn the turn model ended is taken at once when its words are whole, and after the longer silence
    when they are not (the speaker said nothing more): answered either way. A turn that ended on a stream's
    close is not held."""
    cases = (
        ("What time is it?", "turn_model", 0.9, 0.0),
        ("Tell me a story", "turn_model", 0.02, HOLD),
        ("I would like to know", "silence", 0.001, (UNFINISHED_MS - 700) / 1000),  # the asr's default 700 ms
        ("Tell me about the", "stream_end", 0.001, 0.0),
    )
    for words, rule, whole, held in cases:
        stack.script.clear()
        stack.script.update(
            asr={"speculative_after": 60, "utterances": [{"text": words, "rule": rule}]},
            llm={"replies": [{"text": "Here you are.", "end_of_turn": whole}]},
        )
        with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
            ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
            json.loads(ws.recv(timeout=10))
            send_speech(ws, utterance(0.8))
            ws_collect(ws, lambda e: e["type"] == "speech_ended")
            ended = time.monotonic()
            got = [e for e in ws_collect(ws, lambda e: e["type"] == "transcript") if isinstance(e, dict)]
            waited = time.monotonic() - ended
            events = got + [e for e in ws_collect(ws, lambda e: e["type"] == "reply_done") if isinstance(e, dict)]
        assert events[0]["text"] == words and events[-1]["text"] == "Here you are.", events
        # The hold is a wait the core makes on purpose: only a lower bound is certain; the other is far off it.
        assert waited >= held - 0.1 if held else waited < HOLD / 2, (words, waited)


def test_whole_words_end_a_pause_the_turn_model_did_not(stack, client) -> None:
    """At a pause the asr's turn model did not call the end, the speculative reply's words, judged whole, end
    the utterance at once (rule words) and that reply is the turn's; judged less surely, the silence rule ends
    it as before."""
    for whole, rule in ((0.9, "words"), (0.3, "silence")):
        stack.script.clear()
        stack.script.update(
            asr={
                "speculative_after": 0.1,
                "end_silence": 1.0,
                "utterances": [{"text": "What is frozen water called?", "rule": "silence"}],
            },
            llm={"replies": [{"text": "It is called ice.", "end_of_turn": whole}]},
        )
        with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
            ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
            json.loads(ws.recv(timeout=10))
            send_speech(ws, utterance(0.8, after=0.3))  # a pause: its speculative result, not the silence rule
            if rule == "silence":
                deadline = time.monotonic() + 10
                while not stack.script.calls("llm"):
                    assert time.monotonic() < deadline, "the pause's words were not asked about"
                    time.sleep(0.02)
                time.sleep(0.5)  # the judgement's time to end the utterance, were it taken as whole
                send_speech(ws, quiet(1.0))
            events = [e for e in ws_collect(ws, lambda e: e["type"] == "reply_done") if isinstance(e, dict)]
        assert [e["rule"] for e in events if e["type"] == "speech_ended"] == [rule], events
        assert [e["text"] for e in events if e["type"] == "transcript"] == ["What is frozen water called?"]
        assert events[-1]["text"] == "It is called ice.", events
        asked = [c["request"]["messages"][-1]["content"] for c in stack.script.calls("llm")]
        assert asked == ["What is frozen water called?"]  # the speculative reply, confirmed


def test_a_stopping_core_answers_the_utterance_it_hears_then_hands_over(stack, client) -> None:
    """The stop comes between the end of speech and the final: the turn is answered whole before the 1012.
    No speculative reply holds the conversation busy meanwhile: the final alone must start the turn in time."""
    stack.script.update(
        asr={"speculative_after": 60, "utterances": [{"text": "What is the capital of France?", "final_delay": 1.0}]},
        llm={"replies": [{"text": "Paris is the capital.", "token_delay": 0.05}]},
    )
    ws = open_conversation(stack.ports["core"])
    send_speech(ws, utterance(0.8))
    read_until(ws, lambda e: e["type"] == "speech_ended")
    stack.procs["core"].send_signal(signal.SIGTERM)
    code, reason, events = close_code(ws)
    kinds = [e["type"] for e in events]
    assert (code, reason) == (1012, RECONNECT_REASON), events
    assert kinds[0] == "transcript" and kinds[-1] == "reply_done", events
    assert events[-1]["text"] == "Paris is the capital.", events
    assert stack.procs["core"].wait(30) == 0
    stack.start("core")
    stack.wait("core")


def test_a_stopping_core_finishes_the_realtime_response_it_owes_then_hands_over(stack, client) -> None:
    """The same over the Realtime API: the stop comes between speech_stopped and the transcript; the
    response to that speech completes before the 1012."""
    stack.script.update(
        asr={"speculative_after": 60, "utterances": [{"text": "What is the capital of France?", "final_delay": 1.0}]},
        llm={"replies": [{"text": "Paris is the capital.", "token_delay": 0.05}]},
    )
    seen: list[dict] = []
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/realtime", max_size=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
        pcm = utterance(0.8, 24_000, after=1.0)
        for i in range(0, len(pcm), 9600):
            ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + 9600]).decode()})
            )
        while not seen or seen[-1]["type"] != "input_audio_buffer.speech_stopped":
            seen.append(json.loads(ws.recv(timeout=30)))
        stack.procs["core"].send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                seen.append(json.loads(ws.recv(timeout=30)))
    received = closed.value.rcvd
    assert received is not None and (received.code, received.reason) == (1012, RECONNECT_REASON), seen
    done = [e for e in seen if e["type"] == "response.done"]
    assert len(done) == 1 and done[0]["response"]["status"] == "completed", [e["type"] for e in seen]
    transcript = next(e for e in seen if e["type"] == "response.output_audio_transcript.done")
    assert transcript["transcript"] == "Paris is the capital."
    assert stack.procs["core"].wait(30) == 0
    stack.start("core")
    stack.wait("core")


def test_a_client_that_leaves_an_openai_stream_cancels_the_generation(stack, client) -> None:
    # A reply scripted to take 6 s: it can only end early if the core cancels it when the client leaves.
    stack.script.update(llm={"replies": [{"match": "story", "text": "Once upon a time. " * 20, "token_delay": 0.1}]})
    model = client.get("/v1/models").json()["data"][1]["id"]
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "Tell me a long story."}]}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        next(response.iter_lines())
    log = stack.logs / "llm.log"
    deadline = time.monotonic() + 30
    while "Generate CANCELLED" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.1)
    assert client.get("/healthz").status_code == 200


def test_websocket_bad_config_is_refused(stack) -> None:
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 5}))
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and "sample_rate" in error["message"]
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
        ws.send("not json")
        assert json.loads(ws.recv(timeout=10))["type"] == "error"


@pytest.mark.parametrize(
    ("content", "headers", "params", "status", "message"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEjunk", {"Content-Type": "audio/wav"}, {}, 400, "corrupt WAV"),
        (b"", {"Content-Type": "audio/wav"}, {}, 400, "the request body is empty"),
        (b"hello", {"Content-Type": "text/plain"}, {}, 415, "Content-Type text/plain is not audio"),
        (b"\x00" * 100, {}, {}, 415, "no Content-Type"),
        (b"\x00" * 100, {"Content-Type": "audio/L16"}, {}, 400, "needs a rate"),
        (b"\x00" * (UPLOAD_LIMIT + 10), {"Content-Type": "audio/wav"}, {}, 413, "the limit is"),
        (b"\x00" * 100, {"Content-Type": "audio/wav"}, {"session_id": "no spaces!"}, 400, "session_id"),
    ],
)
def test_bad_requests_get_4xx_json(client, content, headers, params, status, message) -> None:
    response = client.post("/v1/converse", content=content, headers=headers, params=params)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert client.get("/healthz").status_code == 200


def test_bad_json_bodies(client) -> None:
    unknown = client.post("/v1/chat", json={"nope": 1})  # one error shape for validation too (issue 15)
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "INVALID_REQUEST"
    assert client.post("/v1/chat", json={"message": "  "}).json()["error"]["code"] == "EMPTY_TEXT"
    assert client.post("/v1/speak", json={"text": ""}).json()["error"]["stage"] == "tts"
    assert client.post("/v1/speak", json={"text": "hi", "voice": "nobody"}).status_code == 400
    assert client.get("/docs").status_code == 200
    assert "/v1/converse" in client.get("/openapi.json").json()["paths"]


def test_a_hung_backend_gives_a_504_naming_it(stack, client) -> None:
    llm = stack.procs["llm"]
    llm.send_signal(signal.SIGSTOP)
    try:
        response = client.post("/v1/converse", content=question_wav(), headers={"Content-Type": "audio/wav"})
        assert response.status_code == 504  # at the llm's deadline, not a hang (the client's timeout is 60 s)
        assert response.json()["error"]["stage"] == "llm"
    finally:
        llm.send_signal(signal.SIGCONT)


def test_healthz_follows_a_service_down_and_back(stack, client) -> None:
    stack.stop("tts")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["tts"]
    speak = client.post("/v1/speak", json={"text": "Hello."})
    assert speak.status_code == 503 and speak.json()["error"]["stage"] == "tts"
    status = subprocess.run(voxstack_command("status", "--url", stack.url), capture_output=True, text=True, timeout=60)
    assert status.returncode == 1 and "tts" in status.stdout
    stack.start("tts")
    stack.wait("tts")
    assert client.get("/healthz").status_code == 200  # the same core process
    assert client.post("/v1/speak", json={"text": "Hello."}).status_code == 200


def test_a_killed_backend_gives_a_5xx_naming_it(stack, client) -> None:
    stack.procs["llm"].send_signal(signal.SIGKILL)
    stack.procs["llm"].wait(10)
    response = client.post("/v1/converse", content=question_wav(), headers={"Content-Type": "audio/wav"})
    assert response.status_code == 503
    assert response.json()["error"]["stage"] == "llm"
    with client.stream("POST", "/v1/chat", json={"message": "Hi"}) as streamed:
        assert streamed.status_code == 503


def test_core_stops_gracefully_with_exit_0(stack) -> None:
    core = stack.procs["core"]
    core.send_signal(signal.SIGTERM)
    assert core.wait(30) == 0
    stack.procs.pop("core")
