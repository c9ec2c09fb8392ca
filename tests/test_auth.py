"""API keys on the core, for real: a prod core process with keys (its backends need not run for these)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from voxstack.config import CoreSettings
from voxstack.core.auth import ApiKeys, check_exposure, digest, hashed_line
from voxstack.errors import StartupError
from voxstack.testing.processes import ServiceProcess, free_port, voxstack_command

KEY = "vk-test-0123456789abcdef"
FILED_KEY = "vk-filed-key-fedcba9876543210"


def handshake_refused(url: str) -> int:
    """The HTTP status of a WebSocket handshake the core refuses."""
    with pytest.raises(InvalidStatus) as refused, connect(url):
        pass
    return refused.value.response.status_code


@pytest.fixture(scope="module")
def core(tmp_path_factory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("auth")
    keys_file = folder / "keys"
    keys_file.write_text(f"# callers\n{hashed_line(FILED_KEY)}\n")
    env = {f"VOXSTACK_CORE__{n.upper()}_ADDRESS": f"127.0.0.1:{free_port()}" for n in ("asr", "llm", "tts")}
    env |= {
        "VOXSTACK_CORE__API_KEYS": json.dumps([KEY]),
        "VOXSTACK_CORE__API_KEYS_FILE": str(keys_file),
        "VOXSTACK_CORE__RETRIES": "0",
        "VOXSTACK_CORE__WS_TOKEN_SECONDS": "2",
    }
    process = ServiceProcess("core", mode="prod", env=env, log=folder / "core.log").start().wait_live()
    yield process
    process.stop()
    assert KEY not in process.output() and FILED_KEY not in process.output()


def test_health_probes_need_no_key(core: ServiceProcess) -> None:
    assert httpx.get(f"{core.url}/livez").status_code == 200
    assert httpx.get(f"{core.url}/healthz", timeout=30).status_code == 503  # no backends; not a 401


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": f"Basic {KEY}"}]
)
def test_every_other_route_needs_a_valid_key(core: ServiceProcess, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/v1/voices"), ("POST", "/v1/chat"), ("POST", "/v1/auth/ws-token")):
        response = httpx.request(method, f"{core.url}{path}", headers=headers, json={"message": "hi"})
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "UNAUTHORIZED" and response.json()["error"]["request_id"]


@pytest.mark.parametrize(
    "headers", [{"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}, {"Authorization": f"bearer {FILED_KEY}"}]
)
def test_a_valid_key_gets_through(core: ServiceProcess, headers: dict[str, str]) -> None:
    response = httpx.get(f"{core.url}/v1/voices", headers=headers, timeout=30)
    assert response.status_code == 503  # past authentication; the tts is not running


def test_metrics_need_a_key_unless_made_public(core: ServiceProcess, tmp_path: Path) -> None:
    assert httpx.get(f"{core.url}/metrics").status_code == 401
    scraped = httpx.get(f"{core.url}/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert scraped.status_code == 200 and "voxstack_core_http_requests_total" in scraped.text
    env = {"VOXSTACK_CORE__API_KEYS": json.dumps([KEY]), "VOXSTACK_CORE__METRICS_PUBLIC": "true"}
    public = ServiceProcess("core", mode="prod", env=env, log=tmp_path / "core.log").start().wait_live()
    try:
        assert httpx.get(f"{public.url}/metrics").status_code == 200
        assert httpx.get(f"{public.url}/v1/voices").status_code == 401  # only the metrics are open
    finally:
        public.stop()


def test_the_websocket_takes_a_key_at_the_handshake_or_a_short_lived_token(core: ServiceProcess) -> None:
    url = f"ws://127.0.0.1:{core.port}/v1/stream"
    assert handshake_refused(url) == 403
    with connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
    token = httpx.post(f"{core.url}/v1/auth/ws-token", headers={"X-API-Key": KEY}).json()["token"]
    with connect(f"{url}?token={token}") as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
    for bad in (token[:-2] + "xx", "garbage", ""):
        assert handshake_refused(f"{url}?token={bad}") == 403
    time.sleep(2.2)  # the token lives ws_token_seconds (2 s here)
    assert handshake_refused(f"{url}?token={token}") == 403


def test_tokens_and_keys_on_their_own() -> None:
    keys = ApiKeys([digest(KEY)], token_seconds=60)
    assert keys.valid(KEY) and not keys.valid(KEY + "x") and not keys.valid(None) and not keys.valid("")
    token, expires = keys.token(now=1000.0)
    assert expires == 1060.0 and keys.valid_token(token, now=1059.0) and not keys.valid_token(token, now=1061.0)
    other = ApiKeys([digest("another key")], token_seconds=60)
    assert not other.valid_token(token, now=1000.0)  # signed with the keys: other keys, other secret
    assert ApiKeys([digest(KEY)], token_seconds=60).valid_token(token, now=1000.0)  # same keys: any replica


def test_a_prod_core_on_a_public_address_without_keys_refuses_to_start(tmp_path: Path) -> None:
    process = ServiceProcess("core", mode="prod", env={"VOXSTACK_CORE__HOST": "0.0.0.0"}, log=tmp_path / "core.log")
    process.start()
    assert process.wait(60) == 1
    assert "no API keys" in process.output() and "ALLOW_ANONYMOUS" in process.output()
    no_keys = ApiKeys([], 60)
    for host, allowed in (("127.0.0.2", True), ("::1", True), ("10.0.0.1", False), ("core.example", False)):
        core = CoreSettings(host=host)
        if allowed:
            check_exposure(core, prod=True, keys=no_keys)
        else:
            with pytest.raises(StartupError):
                check_exposure(core, prod=True, keys=no_keys)
        check_exposure(core, prod=True, keys=ApiKeys([digest(KEY)], 60))  # with keys: anywhere
        check_exposure(core.model_copy(update={"allow_anonymous": True}), prod=True, keys=no_keys)
        check_exposure(core, prod=False, keys=no_keys)  # dev is for this machine: not checked


def test_a_bad_keys_file_line_is_named(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("sha256:abc\n")
    env = {"VOXSTACK_CORE__API_KEYS_FILE": str(keys_file)}
    process = ServiceProcess("core", mode="prod", env=env, log=tmp_path / "core.log").start()
    assert process.wait(60) == 1
    assert f"{keys_file}:1" in process.output()


def test_the_config_command_hashes_a_key() -> None:
    result = subprocess.run(voxstack_command("config", "--hash-key", KEY), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == hashed_line(KEY) == f"sha256:{digest(KEY)}"
