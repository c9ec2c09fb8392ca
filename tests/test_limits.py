"""Limits at the core's edge (issue 15): connections, timeouts, per-client rate and concurrency, origins and
hosts, WebSocket idle time, local API-docs assets. A real core process whose backends are nowhere: none of
this needs a model, and each refusal happens before one would be asked.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from voxstack.testing.processes import ServiceProcess, free_port

pytestmark = pytest.mark.slow

CAP = 40
KEYS = ["key-one-0123456789", "key-two-0123456789"]


def _nowhere() -> dict[str, str]:
    env = {f"VOXSTACK_CORE__{n.upper()}_ADDRESS": f"127.0.0.1:{free_port()}" for n in ("asr", "llm", "tts")}
    return env | {"VOXSTACK_CORE__RETRIES": "0"}


@pytest.fixture(scope="module")
def core(tmp_path_factory) -> Iterator[ServiceProcess]:
    env = _nowhere() | {
        "VOXSTACK_CORE__MAX_CONNECTIONS": str(CAP),
        "VOXSTACK_CORE__HEADER_TIMEOUT": "1.5",
        "VOXSTACK_CORE__KEEPALIVE_TIMEOUT": "1",
        "VOXSTACK_CORE__BODY_TIMEOUT": "1.5",
        "VOXSTACK_CORE__CORS_ORIGINS": json.dumps(["http://app.example:3000"]),
        "VOXSTACK_CORE__WS_IDLE_SECONDS": "1",
    }
    log = tmp_path_factory.mktemp("limits") / "core.log"
    process = ServiceProcess("core", mode="dev", env=env, log=log).start().wait_live()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Iterator[ServiceProcess]:
    """A prod core with keys, a request rate of 2 a second (bursts of 3) and one request at a time per client."""
    env = _nowhere() | {
        "VOXSTACK_CORE__API_KEYS": json.dumps(KEYS),
        "VOXSTACK_CORE__RATE_LIMIT": "2",
        "VOXSTACK_CORE__RATE_BURST": "3",
        "VOXSTACK_CORE__CLIENT_CONCURRENCY": "1",
        "VOXSTACK_CORE__BODY_TIMEOUT": "5",
    }
    log = tmp_path_factory.mktemp("limited") / "core.log"
    process = ServiceProcess("core", mode="prod", env=env, log=log).start().wait_live()
    yield process
    process.stop()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``seconds``."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _error(response: httpx.Response) -> dict:
    return response.json()["error"]


# ---- 5. Connections: a cap that keeps health checks answering, and timeouts -----------------------------


def test_5_idle_connections_past_the_cap_do_not_lock_out_health_checks(core: ServiceProcess) -> None:
    idle = [socket.create_connection(("127.0.0.1", core.port)) for _ in range(CAP * 3)]
    try:
        for path in ("/livez", "/healthz"):
            response = httpx.get(f"{core.url}{path}", timeout=10)
            assert response.status_code in (200, 503) and response.json(), path
        assert httpx.get(f"{core.url}/livez", timeout=10).status_code == 200
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 15
    while "at the connection cap" not in core.output() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"at the connection cap ({CAP})" in core.output()


def test_5_when_every_connection_is_busy_a_new_one_is_refused_and_the_core_goes_on(core: ServiceProcess) -> None:
    busy = []
    try:
        for _ in range(CAP):  # uploads in flight: busy, not idle
            sock = socket.create_connection(("127.0.0.1", core.port))
            sock.sendall(
                b"POST /v1/transcribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\n"
                b"Content-Length: 100000\r\n\r\n"
            )
            busy.append(sock)
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", core.port)) as refused:
            assert _closed_within(refused, 1.0), "a connection past the cap was kept"
    finally:
        for sock in busy:
            sock.close()
    deadline = time.monotonic() + 10
    while True:  # the busy ones leave; the core serves again
        try:
            if httpx.get(f"{core.url}/livez", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "Exception in callback" not in core.output() and " ERROR " not in core.output()


def test_5_a_request_head_that_never_completes_is_closed(core: ServiceProcess) -> None:
    with socket.create_connection(("127.0.0.1", core.port)) as silent:
        assert _closed_within(silent, 6), "a silent connection stayed open"
    with socket.create_connection(("127.0.0.1", core.port)) as slow:
        slow.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never the blank line
        started = time.monotonic()
        while time.monotonic() - started < 3:  # a header now and then does not keep it open
            try:
                slow.sendall(b"X-a: b\r\n")
            except OSError:
                break
            time.sleep(0.3)
        assert _closed_within(slow, 6), "a slowloris connection stayed open"


def test_5_an_idle_keep_alive_connection_is_closed(core: ServiceProcess) -> None:
    with socket.create_connection(("127.0.0.1", core.port)) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert _closed_within(sock, 6)


@pytest.mark.parametrize(("path", "content_type"), [("/v1/speak", "application/json"), ("/v1/transcribe", "audio/wav")])
def test_5_a_body_that_stops_arriving_gets_408(core: ServiceProcess, path: str, content_type: str) -> None:
    with socket.create_connection(("127.0.0.1", core.port)) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Content-Length: 1000\r\n\r\n".encode()
            + b"x" * 10
        )
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "BODY_TIMEOUT"


# ---- Origins and hosts --------------------------------------------------------------------------------


def test_a_page_from_another_origin_is_refused_and_an_allowed_one_gets_cors(core: ServiceProcess) -> None:
    url = f"{core.url}/openapi.json"
    foreign = httpx.get(url, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and _error(foreign)["code"] == "ORIGIN_NOT_ALLOWED"
    own = httpx.get(url, headers={"Origin": f"http://127.0.0.1:{core.port}"})
    assert own.status_code == 200
    allowed = httpx.get(url, headers={"Origin": "http://app.example:3000"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://app.example:3000"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    preflight = httpx.options(
        f"{core.url}/v1/speak",
        headers={
            "Origin": "http://app.example:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"]


def test_a_websocket_from_another_origin_is_refused(core: ServiceProcess) -> None:
    ws_url = f"ws://127.0.0.1:{core.port}/v1/stream"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, origin="http://evil.example", open_timeout=10)
    assert refused.value.response.status_code == 403
    with connect(ws_url, origin="http://app.example:3000", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"


def test_a_loopback_core_answers_only_to_loopback_names(core: ServiceProcess) -> None:
    """DNS rebinding: a hostile name that resolves to 127.0.0.1 is not served; health probes still are."""
    rebound = httpx.get(f"{core.url}/openapi.json", headers={"Host": f"evil.example:{core.port}"})
    assert rebound.status_code == 400 and _error(rebound)["code"] == "HOST_NOT_ALLOWED"
    assert httpx.get(f"{core.url}/livez", headers={"Host": "evil.example"}).status_code == 200
    assert httpx.get(f"http://localhost:{core.port}/openapi.json").status_code == 200
    for malformed in (f"127.0.0.1:{core.port}@evil.example", "127.0.0.1:80:81", "local host", "127.0.0.1:x"):
        refused = httpx.get(f"{core.url}/openapi.json", headers={"Host": malformed})
        assert refused.status_code == 400 and _error(refused)["code"] == "HOST_NOT_ALLOWED", malformed
    assert httpx.get(f"{core.url}/openapi.json", headers={"Host": f"[::1]:{core.port}"}).status_code == 200


# ---- WebSocket idle time ------------------------------------------------------------------------------


# Moved: a WebSocket silent after its config is closed in test_reliability.py (it needs an asr).


# ---- 17. Dev docs load their assets from the core, not a CDN ---------------------------------------------


def test_17_dev_docs_pages_use_local_assets(core: ServiceProcess) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{core.url}{page}").text
        assert "cdn." not in html and "fonts.googleapis" not in html, page
        for asset in [p for p in html.replace("'", '"').split('"') if p.startswith("/docs-assets/")]:
            response = httpx.get(f"{core.url}{asset}")
            assert response.status_code == 200 and len(response.content) > 1000, asset


# ---- Per-client rate and concurrency -----------------------------------------------------------------------


def test_a_client_over_its_rate_gets_429_with_retry_after_and_others_do_not(limited: ServiceProcess) -> None:
    one, two = ({"Authorization": f"Bearer {key}"} for key in KEYS)
    # One kept-alive connection, and the refusal examined is the first one: a slow machine must not
    # refill the bucket between asking and checking.
    with httpx.Client(base_url=limited.url, headers=one) as client:
        answers = []
        while len(answers) < 20 and (not answers or answers[-1].status_code != 429):
            answers.append(client.get("/nothing-here"))
    statuses = [a.status_code for a in answers]
    assert statuses[:3] == [404, 404, 404] and statuses[-1] == 429, statuses
    refused = answers[-1]
    assert int(refused.headers["retry-after"]) >= 1
    assert _error(refused)["code"] == "RATE_LIMITED" and _error(refused)["request_id"]
    assert httpx.get(f"{limited.url}/nothing-here", headers=two).status_code == 404  # its own bucket
    assert httpx.get(f"{limited.url}/healthz", timeout=10).status_code == 503  # probes are never limited
    time.sleep(1.1)
    assert httpx.get(f"{limited.url}/nothing-here", headers=one).status_code == 404  # refilled


def test_a_client_at_its_concurrency_gets_429(limited: ServiceProcess) -> None:
    time.sleep(2)  # a full bucket
    key = {"Authorization": f"Bearer {KEYS[1]}"}
    with socket.create_connection(("127.0.0.1", limited.port)) as held:
        held.sendall(
            f"POST /v1/transcribe HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEYS[1]}\r\n"
            "Content-Type: audio/wav\r\nContent-Length: 100000\r\n\r\n".encode()
        )
        time.sleep(0.5)  # the upload is in flight
        second = httpx.get(f"{limited.url}/nothing-here", headers=key)
        assert second.status_code == 429 and _error(second)["code"] == "TOO_MANY_CONCURRENT"
    deadline = time.monotonic() + 10
    while httpx.get(f"{limited.url}/nothing-here", headers=key).status_code != 404:
        assert time.monotonic() < deadline, "the held request's slot never came back"
        time.sleep(0.6)


def test_rate_limit_state_is_bounded() -> None:
    from voxstack.core import ratelimit

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        pass

    limiter = ratelimit.RateLimit(app, rate=1, burst=1, concurrency=0)
    for n in range(ratelimit.MAX_CLIENTS + 50):
        limiter.client(f"addr-{n}")
    assert len(limiter.clients) == ratelimit.MAX_CLIENTS
