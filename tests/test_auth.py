"""API keys on the core, for real: a prod core process with keys (its backends need not run for these)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from voxstack.config import CoreSettings
from voxstack.core.auth import ApiKeys, check_exposure, digest, hashed_line
from voxstack.errors import EXIT_STARTUP, StartupError
from voxstack.testing.processes import ServiceProcess, free_port, voxstack_command, wait_until

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
    wait_until(lambda: "/v1/stream?token=[redacted]" in core.output(), "the redacted access line", timeout=10)
    assert token not in core.output()  # the access line names the route, not the credential
    time.sleep(2.2)  # the token lives ws_token_seconds (2 s here)
    assert handshake_refused(f"{url}?token={token}") == 403


def test_the_realtime_api_takes_the_sdks_key_or_a_token(core: ServiceProcess) -> None:
    url = f"ws://127.0.0.1:{core.port}/v1/realtime?model=x"
    assert handshake_refused(url) == 403
    keyed = openai.OpenAI(base_url=f"{core.url}/v1", api_key=KEY, max_retries=0)
    with keyed, keyed.realtime.connect(model="x") as realtime:  # the SDK sends Authorization: Bearer
        assert realtime.recv().type == "session.created"
    wrong = openai.OpenAI(base_url=f"{core.url}/v1", api_key="vk-wrong-key-0123456789", max_retries=0)
    with wrong, pytest.raises(InvalidStatus), wrong.realtime.connect(model="x") as realtime:
        realtime.recv()
    token = httpx.post(f"{core.url}/v1/auth/ws-token", headers={"X-API-Key": KEY}).json()["token"]
    with connect(f"{url}&token={token}") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session.created"


def forged_token(digests: list[str], owner: str, expires: float) -> str:
    """A token signed the way cores once did: with a secret derived from the keys' digests, which anyone
    who can read a keys file knows."""
    secret = hashlib.sha256(b"voxstack-ws-token:" + b"".join(sorted(bytes.fromhex(d) for d in digests))).digest()
    claims = json.dumps({"exp": expires, "sub": owner}).encode()
    payload = base64.urlsafe_b64encode(claims).decode().rstrip("=")
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def test_tokens_and_keys_on_their_own() -> None:
    keys = ApiKeys([digest(KEY), digest(FILED_KEY)], token_seconds=60)
    assert keys.valid(KEY) and not keys.valid(KEY + "x") and not keys.valid(None) and not keys.valid("")
    owner = keys.owner(KEY)
    assert owner is not None and owner != keys.owner(FILED_KEY)
    token, expires = keys.token(owner, now=1000.0)
    assert expires == 1060.0 and keys.token_owner(token, now=1059.0) == owner
    assert not keys.valid_token(token, now=1061.0)
    again = ApiKeys([digest(KEY), digest(FILED_KEY)], token_seconds=60)
    assert not again.valid_token(token, now=1000.0)  # the same keys, another secret: keys do not sign
    again.adopt_secret(b"s" * 32)
    keys.adopt_secret(b"s" * 32)  # what two cores on one session store do
    token, _ = keys.token(owner, now=1000.0)
    assert again.token_owner(token, now=1000.0) == owner
    fixed = ApiKeys([digest(KEY)], 60, secret=b"from the settings, 32 characters")
    fixed.adopt_secret(b"s" * 32)  # the setting wins over the store
    assert not fixed.valid_token(token, now=1000.0)
    for bad in (token + "\u00e9", "\u00e9.\u00e9", "x" * 5000 + "." + "y", "."):
        assert not keys.valid_token(bad, now=1000.0)


def test_a_token_forged_from_the_keys_file_is_refused() -> None:
    digests = [digest(KEY), digest(FILED_KEY)]
    keys = ApiKeys(digests, token_seconds=60)
    victim = keys.owner(FILED_KEY)
    assert victim is not None
    for owner, expires in ((victim, 1e15), (victim, time.time() + 30), ("", time.time() + 30)):
        assert keys.token_owner(forged_token(digests, owner, expires)) is None
    # Even with the real secret, claims this core would never issue are refused.
    keys.adopt_secret(b"k" * 32)
    signed = ApiKeys(digests, 60, secret=b"k" * 32)
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1e15, "sub": victim}).encode()).decode().rstrip("=")
    assert keys.token_owner(f"{payload}.{signed._sign(payload)}") is None
    payload = base64.urlsafe_b64encode(json.dumps({"exp": time.time() + 30, "sub": "key-0"}).encode()).decode()
    assert keys.token_owner(f"{payload}.{signed._sign(payload)}") is None


def test_the_core_refuses_a_forged_token_and_cores_on_one_store_share_theirs(
    core: ServiceProcess, tmp_path: Path
) -> None:
    url = f"ws://127.0.0.1:{core.port}/v1/stream"
    victim = ApiKeys([digest(FILED_KEY)], 60).owner(FILED_KEY)
    assert victim is not None
    # What the digests in a keys file (and this core's keys) once let anyone sign.
    for expires in (1e15, time.time() + 30):
        assert (
            handshake_refused(f"{url}?token={forged_token([digest(KEY), digest(FILED_KEY)], victim, expires)}") == 403
        )
    # Two replicas on one session store: a token from either opens the other's WebSocket.
    env = {f"VOXSTACK_CORE__{n.upper()}_ADDRESS": f"127.0.0.1:{free_port()}" for n in ("asr", "llm", "tts")}
    env |= {"VOXSTACK_CORE__API_KEYS": json.dumps([KEY]), "VOXSTACK_CORE__SESSION_STORE": f"sqlite:///{tmp_path}/s.db"}
    replicas = [ServiceProcess("core", mode="prod", env=env, log=tmp_path / f"core{n}.log").start() for n in range(2)]
    try:
        for replica in replicas:
            replica.wait_live()
        token = httpx.post(f"{replicas[0].url}/v1/auth/ws-token", headers={"X-API-Key": KEY}).json()["token"]
        with connect(f"ws://127.0.0.1:{replicas[1].port}/v1/stream?token={token}") as ws:
            ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        assert handshake_refused(f"{url}?token={token}") == 403  # a core on another store: another secret
    finally:
        for replica in replicas:
            replica.stop()


def test_weak_keys_and_secrets_are_refused() -> None:
    for weak in (["a"], [" " * 20], ["short-key"], [f" {KEY}"], [KEY, ""]):
        with pytest.raises(ValueError, match="too weak"):
            CoreSettings(api_keys=weak)
    with pytest.raises(ValueError, match="32 characters"):
        CoreSettings(ws_token_secret="too short")
    assert CoreSettings(api_keys=[KEY], ws_token_secret="x" * 32).api_keys[0].get_secret_value() == KEY


def test_a_weak_key_stops_a_core_on_a_public_address(tmp_path: Path) -> None:
    env = {"VOXSTACK_CORE__HOST": "0.0.0.0", "VOXSTACK_CORE__API_KEYS": '["a"]'}
    process = ServiceProcess("core", mode="prod", env=env, log=tmp_path / "core.log").start()
    assert process.wait(60) != 0
    assert "VOXSTACK_CORE__API_KEYS" in process.output() or "api_keys" in process.output()
    assert "too weak" in process.output()


def test_a_prod_core_on_a_public_address_without_keys_refuses_to_start(tmp_path: Path) -> None:
    process = ServiceProcess("core", mode="prod", env={"VOXSTACK_CORE__HOST": "0.0.0.0"}, log=tmp_path / "core.log")
    process.start()
    assert process.wait(60) == EXIT_STARTUP
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
    assert process.wait(60) == EXIT_STARTUP
    assert f"{keys_file}:1" in process.output()


def test_the_config_command_hashes_a_key() -> None:
    result = subprocess.run(voxstack_command("config", "--hash-key", KEY), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == hashed_line(KEY) == f"sha256:{digest(KEY)}"
