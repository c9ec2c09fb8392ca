"""Regression tests for what probing the production stack found a second time (issue 31).

Real processes: the scripted asr, llm and tts fakes and a real core on free ports. Each test names
the finding it reproduces; the FLAC bomb is in test_decode.py, the forged token in test_auth.py.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from stack import TEST_ENV, TEST_LLM, Stack
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from voxstack.config import CoreSettings
from voxstack.core.fairness import KeyShares
from voxstack.testing.processes import ServiceProcess, free_port, wait_until

TTS_TIMEOUT = 1.0
LLM_MODEL = Path(TEST_LLM.gguf).stem


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"VOXSTACK_CORE__TTS_TIMEOUT": str(TTS_TIMEOUT), "VOXSTACK_CORE__WS_IDLE_SECONDS": "2"}
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
        **TEST_ENV,
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


KEYS = ["reliability-key-one-0123", "reliability-key-two-4567"]


@pytest.fixture(scope="module")
def keyed_core(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A prod core on the fakes with two keys and the per-key limits at small values."""
    env = {f"VOXSTACK_CORE__{n.upper()}_ADDRESS": stack.address(n) for n in ("asr", "llm", "tts")}
    env |= {
        "VOXSTACK_CORE__API_KEYS": json.dumps(KEYS),
        "VOXSTACK_CORE__MAX_CONVERSATIONS": "4",
        "VOXSTACK_CORE__WS_CONFIG_SECONDS": "1",
        "VOXSTACK_CORE__KEY_CONVERSATIONS": "2",
        "VOXSTACK_CORE__KEY_TEXT_TURNS_PER_MINUTE": "6",  # a burst of one, then one every ten seconds
        "VOXSTACK_CORE__KEY_LLM_CALLS": "2",
    }
    log = tmp_path_factory.mktemp("keyed-core") / "core.log"
    process = ServiceProcess("core", mode="prod", env=env, log=log).start().wait_live()
    yield process
    process.stop()


def keyed(core: ServiceProcess, key: str) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{core.port}/v1/stream", additional_headers={"X-API-Key": key}, open_timeout=10)


def closed_with(ws: ClientConnection) -> tuple[int | None, dict]:
    """The close code and the last event before it."""
    last: dict = {}
    with contextlib.suppress(ConnectionClosed):
        while True:
            message = ws.recv(timeout=10)
            if isinstance(message, str):
                last = json.loads(message)
    return ws.close_code, last


def test_one_key_cannot_hold_every_conversation(keyed_core: ServiceProcess) -> None:
    """Finding 4: four WebSockets that never sent a config held every slot for 300 s."""
    with contextlib.ExitStack() as opened:
        silent = [opened.enter_context(keyed(keyed_core, KEYS[0])) for _ in range(2)]
        with keyed(keyed_core, KEYS[0]) as third:
            code, last = closed_with(third)
        assert code == 1013 and last["code"] == "KEY_CONVERSATIONS" and last["retry_after"], (code, last)
        with keyed(keyed_core, KEYS[1]) as other:  # another key gets in meanwhile
            other.send(json.dumps({"type": "config", "sample_rate": 16000}))
            assert json.loads(other.recv(timeout=10))["type"] == "ready"
        for ws in silent:  # and the silent ones are closed once ws_config_seconds have passed
            code, last = closed_with(ws)
            assert code == 1008 and last["code"] == "CONFIG_TIMEOUT", (code, last)
    with keyed(keyed_core, KEYS[0]) as again:  # their slots are free again
        again.send(json.dumps({"type": "config", "sample_rate": 16000}))
        assert json.loads(again.recv(timeout=10))["type"] == "ready"


def test_one_key_cannot_starve_the_llm(stack: Stack, keyed_core: ServiceProcess) -> None:
    """Finding 5: one client typing turns as fast as it could slowed every other key's replies tenfold."""
    stack.script.update(llm={"replies": [{"text": "A slow and steady reply. " * 4, "token_delay": 0.1}]})
    url = f"http://127.0.0.1:{keyed_core.port}"
    try:
        with keyed(keyed_core, KEYS[0]) as flooder:
            flooder.send(json.dumps({"type": "config", "sample_rate": 16000}))
            assert json.loads(flooder.recv(timeout=10))["type"] == "ready"
            for n in range(5):
                flooder.send(json.dumps({"type": "text", "text": f"Turn {n}: " + "words " * 600}))
            limited = []
            with contextlib.suppress(TimeoutError):
                while len(limited) < 4:
                    event = json.loads(message) if isinstance(message := flooder.recv(timeout=10), str) else {}
                    if event.get("type") == "error":
                        limited.append(event)
        assert [e["code"] for e in limited] == ["TEXT_TURNS_LIMITED"] * 4, limited
        assert all(e["retry_after"] for e in limited)
        # The key's llm calls: two at once, a third refused at once; the other key is served meanwhile.
        with ThreadPoolExecutor(2) as pool:
            before = len(stack.script.calls("llm"))
            chat = {"message": "Hi"}
            slow = [
                pool.submit(httpx.post, f"{url}/v1/chat", json=chat, headers=key_header(0), timeout=30)
                for _ in range(2)
            ]
            wait_until(lambda: len(stack.script.calls("llm")) >= before + 2, "the key's two llm calls", timeout=10)
            third = httpx.post(f"{url}/v1/chat", json=chat, headers=key_header(0), timeout=30)
            assert third.status_code == 429 and third.json()["error"]["code"] == "KEY_LLM_BUSY", third.text
            other = httpx.post(f"{url}/v1/chat", json=chat, headers=key_header(1), timeout=30)
            assert other.status_code == 200 and "event: done" in other.text, other.text
            assert all(f.result().status_code == 200 for f in slow)
    finally:
        stack.script.clear()


def key_header(n: int) -> dict[str, str]:
    return {"X-API-Key": KEYS[n]}


def test_a_websocket_silent_after_its_config_is_closed_with_a_reason(stack: Stack) -> None:
    with connect(f"ws://127.0.0.1:{stack.ports['core']}/v1/stream", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        event = json.loads(ws.recv(timeout=10))
        assert event["type"] == "error" and event["code"] == "IDLE_TIMEOUT", event
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1000


def test_the_probe_passes_against_a_core_with_keys(keyed_core: ServiceProcess) -> None:
    """The probe an operator runs against a deployment (docs/SECURITY.md), run here against a real core."""
    result = subprocess.run(
        [sys.executable, "-m", "voxstack.testing.probe", keyed_core.url, "--key", KEYS[1]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 checks, 0 failed" in result.stdout and "skipped" not in result.stdout, result.stdout


def test_a_keys_typed_turns_come_in_bursts_of_ten_seconds_worth_then_at_its_rate() -> None:
    now = [100.0]
    shares = KeyShares(CoreSettings(key_text_turns_per_minute=30), clock=lambda: now[0])  # a burst of 5
    assert [shares.text_turn_refusal("key-a") for _ in range(5)] == [None] * 5
    assert shares.text_turn_refusal("key-a") == ("this key types at most 30 turns a minute; retry in 2 s", 2)
    assert shares.text_turn_refusal("key-b") is None and shares.text_turn_refusal(None) is None  # others, no keys
    now[0] += 2.0
    assert shares.text_turn_refusal("key-a") is None and shares.text_turn_refusal("key-a") is not None
