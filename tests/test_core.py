"""The core end to end: real asr, llm and tts processes (the run's shared real stack), the core on uvicorn, real
speech. The core's own logic (barge-in, a new asr mid-conversation, failing backends, bad requests) is tested over
the scripted fakes in test_core_logic.py."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import threading
import wave

import httpx
import numpy as np
import pytest
from conversation import send_speech, ws_collect
from stack import Stack
from websockets.sync.client import connect

from voxstack.asr.engine import WhisperEngine
from voxstack.audio import decode_wav, resample
from voxstack.testing.processes import voxstack_command
from voxstack.testing.speech import pcm16, silence, sounds_like, wav, wer

pytestmark = pytest.mark.slow

# The tiny default llm answers this one in plain English at temperature 0 (its answer to "What is the
# capital of France?" is "L'Alma: Paris, France.", which the tts and asr round trip spells several ways).
QUESTION = "What colour is the sky on a clear day?"


@pytest.fixture(scope="module")
def stack(real_stack: Stack) -> Stack:
    return real_stack


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
