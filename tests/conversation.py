"""A WebSocket conversation as the tests hold it: open with a session id, typed and spoken turns, the close."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

SESSION = "handover-1"


def open_conversation(port: int, session: str = SESSION) -> ClientConnection:
    ws = connect(f"ws://127.0.0.1:{port}/v1/stream", max_size=None).__enter__()  # closed by the tests
    ws.send(json.dumps({"type": "config", "sample_rate": 16000, "session_id": session}))
    assert json.loads(ws.recv(timeout=30)) == {"type": "ready", "session_id": session}
    return ws


def read_until(ws: ClientConnection, done: Callable[[dict], bool], *, no_errors: bool = False) -> list[dict]:
    """JSON events up to and including the first that ``done`` accepts (audio frames skipped); with
    ``no_errors``, an ``error`` event before it fails the test."""
    events: list[dict] = []
    while True:
        message = ws.recv(timeout=120)
        if isinstance(message, bytes):
            continue
        events.append(json.loads(message))
        assert not no_errors or events[-1]["type"] != "error", events[-1]
        if done(events[-1]):
            return events


def typed_turn(ws: ClientConnection, text: str) -> list[dict]:
    """Events of one typed turn, up to its reply_done."""
    ws.send(json.dumps({"type": "text", "text": text}))
    return read_until(ws, lambda e: e["type"] == "reply_done", no_errors=True)


def close_code(ws: ClientConnection) -> tuple[int, str, list[dict]]:
    """Read until the server closes: its close code and reason, and the events before it."""
    events: list[dict] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            message = ws.recv(timeout=60)
            if isinstance(message, str):
                events.append(json.loads(message))
    received = closed.value.rcvd
    return (received.code, received.reason, events) if received else (1006, "", events)


def spoken_turn(ws: ClientConnection, audio: bytes) -> list[dict]:
    """Events of one spoken turn (16 kHz PCM16 sent at once), up to its reply_done."""
    for i in range(0, len(audio), 3200):
        ws.send(audio[i : i + 3200])
    return read_until(ws, lambda e: e["type"] == "reply_done", no_errors=True)


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
