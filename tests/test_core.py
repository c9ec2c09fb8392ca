"""The core end to end: real asr, llm and tts processes, the core on uvicorn, real speech."""

from __future__ import annotations

import base64
import io
import json
import signal
import subprocess
import threading
import time
import wave
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from speech import pcm16, silence, sounds_like, wav, wer
from stack import Stack
from websockets.sync.client import connect

from voxstack.asr.engine import WhisperEngine
from voxstack.audio import decode_wav, resample
from voxstack.testing.processes import voxstack_command

pytestmark = pytest.mark.slow

# The tiny default llm answers this one in plain English at temperature 0 (its answer to "What is the
# capital of France?" is "L'Alma: Paris, France.", which the tts and asr round trip spells several ways).
QUESTION = "What colour is the sky on a clear day?"
UPLOAD_LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def stack(models_dir, tmp_path_factory) -> Iterator[Stack]:
    from voxstack.models import DEFAULT_MODELS, pull

    pull(DEFAULT_MODELS["llm"], models_dir)
    env = {
        "VOXSTACK_LLM__TEMPERATURE": "0",  # the same question gets the same reply
        "VOXSTACK_LLM__MAX_TOKENS": "60",
        "VOXSTACK_CORE__MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "VOXSTACK_CORE__LLM_TIMEOUT": "4",
    }
    running = Stack(models_dir, tmp_path_factory.mktemp("stack"), env).up()
    yield running
    running.down()


def question_wav(speech, text: str = QUESTION) -> bytes:
    return wav(np.concatenate([silence(0.3), speech.say(text), silence(0.4)]))


def heard(asr: WhisperEngine, wav_data: bytes) -> str:
    audio = decode_wav(wav_data)
    return asr.transcribe(threading.Event(), resample(audio.mono(), audio.sample_rate, 16000), "en").text


def test_converse_answers_a_spoken_question(client, speech, asr) -> None:
    response = client.post("/v1/converse", content=question_wav(speech), headers={"Content-Type": "audio/wav"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert sounds_like(QUESTION, body["transcript"])
    assert body["reply"].strip()
    reply_audio = base64.b64decode(body["audio"]["base64"])
    assert wer(body["reply"], heard(asr, reply_audio)) <= 0.35, (body["reply"], heard(asr, reply_audio))
    timings = body["timings"]
    assert 0 < timings["asr_decode"] < timings["llm_first_token"] <= timings["first_sentence"] < timings["first_audio"]
    assert timings["tts_first_chunk"] > 0 and timings["total"] >= timings["first_audio"]
    assert response.headers["x-voxstack-mode"] == "dev" and response.headers["x-request-id"]


def test_converse_can_answer_with_wav(client, speech) -> None:
    response = client.post(
        "/v1/converse", content=question_wav(speech), headers={"Content-Type": "audio/wav", "Accept": "audio/wav"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert "sky" in response.headers["x-voxstack-transcript"].lower()
    with wave.open(io.BytesIO(response.content)) as w:
        assert w.getnframes() > w.getframerate() // 2


def test_transcribe_and_speak(client, speech, asr) -> None:
    response = client.post(
        "/v1/transcribe",
        content=pcm16(np.concatenate([speech.say(QUESTION), silence(0.3)]), to_rate=16000),
        headers={"Content-Type": "audio/L16; rate=16000; channels=1"},
    )
    assert response.status_code == 200
    assert sounds_like(QUESTION, response.json()["text"])
    spoken = client.post("/v1/speak", json={"text": "Good night and sleep well.", "sample_rate": 16000})
    assert spoken.status_code == 200 and spoken.headers["content-type"] == "audio/wav"
    assert sounds_like("Good night and sleep well.", heard(asr, spoken.content))
    voices = client.get("/v1/voices").json()["voices"]
    assert [(v["name"], v["language"], v["default"]) for v in voices] == [("en_US-joe-medium", "en_US", True)]
    assert voices[0]["sample_rate"] == 22050


def sse(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def test_chat_streams_server_sent_events(client) -> None:
    with client.stream("POST", "/v1/chat", json={"message": "Name a colour."}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse(response)
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) > 1
    assert events[-1][0] == "done"
    assert "".join(deltas) == events[-1][1]["text"]


def test_chat_session_keeps_history(client) -> None:
    first = sse(client.post("/v1/chat", json={"message": "My name is Ada.", "session_id": "hist-1"}))[-1][1]
    second = sse(client.post("/v1/chat", json={"message": "What is my name?", "session_id": "hist-1"}))[-1][1]
    fresh = sse(client.post("/v1/chat", json={"message": "What is my name?", "session_id": "hist-2"}))[-1][1]
    # The second turn's prompt holds the first turn; a new session's does not.
    assert second["prompt_tokens"] > fresh["prompt_tokens"] + first["completion_tokens"]


def ws_collect(ws, until, timeout: float = 60) -> list:
    """Events (dicts) and binary frames until ``until(event)`` is true."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = ws.recv(timeout=deadline - time.monotonic())
        item = message if isinstance(message, bytes) else json.loads(message)
        got.append(item)
        if isinstance(item, dict) and until(item):
            return got
    raise AssertionError(f"timed out; got {[g for g in got if isinstance(g, dict)]}")


def send_speech(ws, audio: bytes, chunk: int = 3200) -> None:
    for i in range(0, len(audio), chunk):
        ws.send(audio[i : i + chunk])


def test_websocket_two_turns_share_history(stack, speech) -> None:
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "session_id": "ws-1", "interim_results": False}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "ready", "session_id": "ws-1"}
        send_speech(
            ws, pcm16(np.concatenate([silence(0.3), speech.say("My name is Ada."), silence(1.0)]), to_rate=16000)
        )
        turn1 = ws_collect(ws, lambda e: e["type"] == "reply_done")
        kinds = [e["type"] for e in turn1 if isinstance(e, dict)]
        assert kinds[:3] == ["speech_started", "speech_ended", "transcript"]
        assert "reply_delta" in kinds and "audio" in kinds
        audio_events = [i for i, e in enumerate(turn1) if isinstance(e, dict) and e["type"] == "audio"]
        assert all(isinstance(turn1[i + 1], bytes) and len(turn1[i + 1]) == turn1[i]["bytes"] for i in audio_events)
        done1 = turn1[-1]
        assert done1["timings"]["first_audio"] > 0

        send_speech(ws, pcm16(np.concatenate([speech.say("What is my name?"), silence(1.0)]), to_rate=16000))
        done2 = ws_collect(ws, lambda e: e["type"] == "reply_done")[-1]
        assert done2["turn"] == 2
        assert done2["prompt_tokens"] > done1["prompt_tokens"] + done1["completion_tokens"]
        ws.send(json.dumps({"type": "end"}))


def test_websocket_moves_to_a_new_asr_when_the_old_one_stops(stack, speech) -> None:
    """What a dev reload of asr does to an open conversation: nothing the client can see."""
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "interim_results": False}))
        json.loads(ws.recv(timeout=10))
        first = "Please turn on the kitchen lights."
        send_speech(ws, pcm16(np.concatenate([silence(0.3), speech.say(first), silence(1.0)]), to_rate=16000))
        ws_collect(ws, lambda e: e["type"] == "reply_done")

        # A second asr on the same port (dev mode: SO_REUSEPORT), then the first one stops.
        log = stack.logs / "asr.log"
        started = log.read_text().count("SERVING on")
        old = stack.procs["asr"]
        stack.start("asr")
        deadline = time.monotonic() + 120
        while log.read_text().count("SERVING on") == started:
            assert time.monotonic() < deadline and stack.procs["asr"].poll() is None, log.read_text()
            time.sleep(0.1)
        old.send_signal(signal.SIGTERM)
        assert old.wait(30) == 0

        second = "What is the weather like tomorrow?"
        send_speech(ws, pcm16(np.concatenate([speech.say(second), silence(1.0)]), to_rate=16000))
        events = [e for e in ws_collect(ws, lambda e: e["type"] in ("transcript", "error")) if isinstance(e, dict)]
        assert events[-1]["type"] == "transcript", events
        assert events[-1]["utterance"] == 1  # one numbering across both asr streams
        assert sounds_like(second, events[-1]["text"]), events[-1]
        ws_collect(ws, lambda e: e["type"] == "reply_done")
    assert "continuing on a new stream" in (stack.logs / "core.log").read_text()


def test_websocket_barge_in_cancels_the_reply(stack, speech) -> None:
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
        json.loads(ws.recv(timeout=10))
        send_speech(
            ws,
            pcm16(
                np.concatenate([silence(0.3), speech.say("Tell me a long story about a dragon."), silence(0.8)]),
                to_rate=16000,
            ),
        )
        ws_collect(ws, lambda e: e["type"] == "reply_delta")
        # Speak again while the first reply is still being produced.
        send_speech(ws, pcm16(np.concatenate([speech.say("What time is it right now?"), silence(1.0)]), to_rate=16000))
        events = ws_collect(ws, lambda e: e["type"] == "reply_done")
        dicts = [e for e in events if isinstance(e, dict)]
        kinds = [e["type"] for e in dicts]
        assert "barge_in" in kinds
        after = kinds.index("barge_in")
        assert all(e.get("turn") != 1 for e in dicts[after:] if e["type"] in ("audio", "reply_delta", "reply_done"))
        assert dicts[-1]["turn"] >= 2  # a later turn finished; the first never did


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
def test_bad_requests_get_4xx_json(client, speech, content, headers, params, status, message) -> None:
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


def test_cli_converse_and_status(stack, speech, tmp_path) -> None:
    question = tmp_path / "q.wav"
    question.write_bytes(question_wav(speech))
    result = subprocess.run(
        voxstack_command("converse", str(question), "-o", str(tmp_path / "r.wav"), "--url", stack.url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "you said:" in result.stdout and "first_audio" in result.stdout
    assert (tmp_path / "r.wav").stat().st_size > 1000
    status = subprocess.run(voxstack_command("status", "--url", stack.url), capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "ok (mode dev)" in status.stdout
    health = subprocess.run(
        voxstack_command("health", "core", "--addr", f"127.0.0.1:{stack.ports['core']}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert health.returncode == 0, health.stderr


def test_a_hung_backend_gives_a_504_naming_it(stack, client, speech) -> None:
    llm = stack.procs["llm"]
    llm.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = client.post("/v1/converse", content=question_wav(speech), headers={"Content-Type": "audio/wav"})
        assert response.status_code == 504
        assert response.json()["error"]["stage"] == "llm"
        assert time.monotonic() - started < 30  # bounded by the llm deadline, not a hang
    finally:
        llm.send_signal(signal.SIGCONT)


def test_healthz_follows_a_service_down_and_back(stack, client, speech) -> None:
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


def test_a_killed_backend_gives_a_5xx_naming_it(stack, client, speech) -> None:
    stack.procs["llm"].send_signal(signal.SIGKILL)
    stack.procs["llm"].wait(10)
    response = client.post("/v1/converse", content=question_wav(speech), headers={"Content-Type": "audio/wav"})
    assert response.status_code == 503
    assert response.json()["error"]["stage"] == "llm"
    with client.stream("POST", "/v1/chat", json={"message": "Hi"}) as streamed:
        assert streamed.status_code == 503


def test_core_stops_gracefully_with_exit_0(stack) -> None:
    core = stack.procs["core"]
    core.send_signal(signal.SIGTERM)
    assert core.wait(30) == 0
    stack.procs.pop("core")
