"""voxstack.health: the one health client, against real servers on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from voxstack.health import check_health, check_http_health, read_core_health
from voxstack.testing.processes import free_port


@pytest.fixture
def core_like() -> Iterator[tuple[str, dict]]:
    """An HTTP server answering /healthz with whatever the test puts in ``answer``."""
    answer: dict = {"code": 200, "body": {}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(answer["body"]).encode()
            self.send_response(answer["code"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", answer
    finally:
        server.shutdown()
        server.server_close()


def test_a_healthy_core_is_serving(core_like) -> None:
    address, answer = core_like
    answer["body"] = {"status": "ok", "mode": "dev", "services": {}}
    result = check_http_health(address)
    assert result.serving and result.status == "SERVING" and result.detail == "mode dev"


def test_a_degraded_core_names_the_failing_services(core_like) -> None:
    address, answer = core_like
    answer["code"], answer["body"] = 503, {"status": "degraded", "failing": ["llm", "tts"]}
    result = check_http_health(address)
    assert not result.serving and result.status == "NOT_SERVING" and result.detail == "failing: llm, tts"
    assert read_core_health(f"http://{address}")["failing"] == ["llm", "tts"]


def test_nothing_listening_is_unreachable_and_never_raises() -> None:
    address = f"127.0.0.1:{free_port()}"
    assert check_http_health(address, timeout=1).status == "UNREACHABLE"
    assert read_core_health(f"http://{address}", timeout=1) is None
    grpc_result = check_health(address, timeout=1)
    assert grpc_result.status == "UNREACHABLE" and "nothing answering" in grpc_result.detail
    assert "UNREACHABLE" in grpc_result.describe()
