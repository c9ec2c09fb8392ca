"""Regression tests for what probing the production stack found a second time (issue 31).

Real processes: the scripted asr, llm and tts fakes and a real core on free ports. Each test names
the finding it reproduces; the FLAC bomb is in test_decode.py, the forged token in test_auth.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from stack import Stack
from websockets.sync.client import connect

from voxstack.models import DEFAULT_MODELS
from voxstack.testing.processes import ServiceProcess, free_port

TTS_TIMEOUT = 1.0
LLM_MODEL = Path(DEFAULT_MODELS["llm"].files[0].name).stem


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"VOXSTACK_CORE__TTS_TIMEOUT": str(TTS_TIMEOUT)}
    logs = tmp_path_factory.mktemp("reliability")
    running = Stack(logs, logs, env, fakes=True).up()
    yield running
    running.down()


def cut_count(stack: Stack) -> float:
    for line in httpx.get(f"{stack.url}/metrics").text.splitlines():
        if line.startswith('voxstack_core_http_responses_cut_total{route="/v1/audio/speech"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize("response_format", ["wav", "flac", "pcm", "mp3"])
def test_speech_cut_by_the_tts_deadline_does_not_pass_for_a_whole_file(stack: Stack, response_format: str) -> None:
    """Finding 3: speech cut at the tts deadline was answered 200 with a body that looked complete."""
    stack.script.update(tts={"chunk_delay": TTS_TIMEOUT / 3})  # ten sentences take longer than the deadline
    before = cut_count(stack)
    body = {"model": "tts-1", "voice": "alloy", "input": "One sentence here. " * 10, "response_format": response_format}
    try:
        with (
            pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"),
            httpx.stream("POST", f"{stack.url}/v1/audio/speech", json=body, timeout=30) as response,
        ):
            assert response.status_code == 200  # the first sentence came in time
            response.read()
        assert cut_count(stack) == before + 1
        # As an SSE stream, the failure is an event of its own and no `done` follows.
        with httpx.stream(
            "POST", f"{stack.url}/v1/audio/speech", json=body | {"stream_format": "sse"}, timeout=30
        ) as response:
            events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
        assert events[0]["type"] == "speech.audio.delta"
        assert events[-1]["error"]["code"] == "tts_deadline_exceeded", events[-1]
        assert not any(e.get("type") == "speech.audio.done" for e in events)
    finally:
        stack.script.clear()
    short = httpx.post(f"{stack.url}/v1/audio/speech", json=body | {"input": "Hello."}, timeout=30)
    assert short.status_code == 200 and short.content  # the core goes on


@pytest.fixture(scope="module")
def prod_core(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A prod core on the fakes, with an llm that is nowhere (a port nobody listens on)."""
    env = {
        "VOXSTACK_CORE__ASR_ADDRESS": stack.address("asr"),
        "VOXSTACK_CORE__TTS_ADDRESS": stack.address("tts"),
        "VOXSTACK_CORE__LLM_ADDRESS": f"127.0.0.1:{free_port()}",
        "VOXSTACK_CORE__RETRIES": "0",
    }
    log = tmp_path_factory.mktemp("prod-core") / "core.log"
    process = ServiceProcess("core", mode="prod", env=env, log=log).start().wait_live()
    yield process
    process.stop()


def test_prod_errors_name_the_stage_and_a_code_only(prod_core: ServiceProcess) -> None:
    """Finding 8: prod clients saw gRPC's words ("UNAVAILABLE: Stream removed") and Python's ("Exceeds the
    limit (4300 digits) for int")."""
    with connect(f"ws://127.0.0.1:{prod_core.port}/v1/stream") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        ws.send(json.dumps({"type": "text", "text": "Hello?"}))
        while (event := json.loads(ws.recv(timeout=30)))["type"] != "error":
            pass
    assert event["stage"] == "llm" and event["code"] == "LLM_UNAVAILABLE", event
    assert event["message"] == "llm is unavailable", event
    with connect(f"ws://127.0.0.1:{prod_core.port}/v1/stream") as ws:
        ws.send('{"type": "config", "sample_rate": ' + "9" * 5000 + "}")
        event = json.loads(ws.recv(timeout=10))
    assert event["code"] == "BAD_CONFIG" and "digits" not in event["message"], event
    assert event["message"] == "the config is not JSON: it holds a number too long to read"
    streamed = httpx.post(
        f"http://127.0.0.1:{prod_core.port}/v1/chat/completions",
        json={"model": LLM_MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        timeout=30,
    )
    assert streamed.status_code == 503 and streamed.json()["error"]["message"] == "llm is unavailable", streamed.text
