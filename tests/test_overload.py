"""Overload: past ``max_conversations`` a new WebSocket conversation is refused at once, named, with a
time to come back; the slots free again when conversations end."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from voxstack.testing.processes import ServiceProcess, free_port

LIMIT = 2


@pytest.fixture(scope="module")
def core(tmp_path_factory) -> Iterator[ServiceProcess]:
    """A prod core with room for two conversations; no backends (admission needs none)."""
    env = {f"VOXSTACK_CORE__{n.upper()}_ADDRESS": f"127.0.0.1:{free_port()}" for n in ("asr", "llm", "tts")}
    env["VOXSTACK_CORE__MAX_CONVERSATIONS"] = str(LIMIT)
    log = tmp_path_factory.mktemp("overload") / "core.log"
    process = ServiceProcess("core", mode="prod", env=env, log=log).start().wait_live()
    yield process
    process.stop()


def refusal(url: str) -> tuple[dict, int, str]:
    """Connect, send nothing: the event the core sends at once, and its close code and reason."""
    with connect(url, open_timeout=10) as ws:
        event = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    return event, closed.value.rcvd.code, closed.value.rcvd.reason


def test_past_the_limit_a_conversation_is_refused_at_once_and_the_slot_frees(core: ServiceProcess) -> None:
    url = f"ws://{core.address}/v1/stream"
    # Open, not yet configured: they count.
    holders = [connect(url, open_timeout=10).__enter__() for _ in range(LIMIT)]  # closed below
    try:
        event, code, reason = refusal(url)
        assert event["type"] == "error"
        assert event["code"] == "OVERLOADED"
        assert f"limit of {LIMIT} conversations" in event["message"]
        assert event["retry_after"] == 5
        assert code == 1013
        assert reason == "overloaded: retry in 5 s"
        metrics = httpx.get(f"{core.url}/metrics", timeout=10).text
        assert "voxstack_core_conversations_refused_total 1.0" in metrics
    finally:
        holders.pop().close()
    # One slot is free again: the next conversation is taken (its config is answered, not refused).
    with connect(url, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
    for ws in holders:
        ws.close()
