"""Probe a running core as an attacker or a careless client would: ``python -m voxstack.testing.probe URL``.

Each check sends one hostile input that once hurt a core (issues 15 and 31) and says whether the answer
is the refusal it should be. Run it against your own deployment only; it sends a few requests, each
bounded, and exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from voxstack.codes import ErrorCode
from voxstack.testing.hostile import flac_bomb


@dataclass
class Target:
    url: str
    key: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/v1/stream"


def ws_answer(target: Target, first: str, url: str | None = None, wait: float = 10) -> tuple[int | None, dict]:
    """The close code and the last event after sending ``first`` (nothing when ``first`` is empty)."""
    last: dict = {}
    with connect(url or target.ws_url, additional_headers=target.headers, open_timeout=10) as ws:
        if first:
            ws.send(first)
        try:
            while True:
                message = ws.recv(timeout=wait)
                if isinstance(message, str):
                    last = json.loads(message)
        except ConnectionClosed:
            pass
        except TimeoutError:
            return None, last
        return ws.close_code, last


def flac_bomb_check(target: Target) -> str:
    started = time.perf_counter()
    answer = httpx.post(
        f"{target.url}/v1/audio/transcriptions",
        headers=target.headers,
        files={"file": ("bomb.flac", flac_bomb(), "audio/flac")},
        data={"model": "whisper-1"},
        timeout=60,
    )
    seconds = time.perf_counter() - started
    assert answer.status_code == 400, f"{answer.status_code} {answer.text[:200]}"
    return f"400 in {seconds * 1000:.0f} ms"


def big_body(target: Target) -> str:
    answer = httpx.post(
        f"{target.url}/v1/chat",
        headers=target.headers | {"Content-Type": "application/json"},
        content=b" " * 33 * 2**20,
    )
    assert answer.status_code == 413, answer.status_code
    return "413"


def deep_config(target: Target) -> str:
    code, last = ws_answer(target, '{"type": "config", "x": ' + "[" * 20_000 + "]" * 20_000 + "}")
    assert code == 1008 and last.get("code") == ErrorCode.BAD_CONFIG, (code, last)
    return "BAD_CONFIG, close 1008"


def huge_number(target: Target) -> str:
    code, last = ws_answer(target, '{"type": "config", "sample_rate": ' + "9" * 5000 + "}")
    assert code == 1008 and "digits" not in last.get("message", ""), (code, last)
    return f"{last.get('code')}, close 1008"


def silent_socket(target: Target) -> str:
    started = time.perf_counter()
    code, last = ws_answer(target, "", wait=60)
    assert code == 1008 and last.get("code") == ErrorCode.CONFIG_TIMEOUT, (code, last)
    return f"closed after {time.perf_counter() - started:.1f} s"


def malformed_host(target: Target) -> str:
    port = urlsplit(target.url).port or 80
    answer = httpx.get(f"{target.url}/v1/voices", headers=target.headers | {"Host": f"127.0.0.1:{port}@evil.example"})
    assert answer.status_code == 400, answer.status_code
    return "400"


def no_key(target: Target) -> str:
    answer = httpx.get(f"{target.url}/v1/voices")
    assert answer.status_code == 401, answer.status_code
    return "401"


def forged_token(target: Target) -> str:
    """A token signed as cores once signed them: with a secret derived from the keys' digests."""
    assert target.key is not None
    digest = hashlib.sha256(target.key.encode()).digest()
    secret = hashlib.sha256(b"voxstack-ws-token:" + digest).digest()
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1e15, "sub": "key-" + digest.hex()[:12]}).encode())
    body = payload.decode().rstrip("=")
    signature = base64.urlsafe_b64encode(hmac.new(secret, body.encode(), hashlib.sha256).digest()).decode().rstrip("=")
    try:
        with connect(f"{target.ws_url}?token={body}.{signature}", open_timeout=10):
            raise AssertionError("the forged token opened a WebSocket")
    except InvalidStatus as refused:
        assert refused.response.status_code == 403, refused.response.status_code
    return "403"


CHECKS: list[tuple[str, Callable[[Target], str], bool]] = [
    ("FLAC bomb on /v1/audio/transcriptions", flac_bomb_check, False),
    ("a 2 MB JSON body (over max_json_bytes)", big_body, False),
    ("a WebSocket config nested 20,000 deep", deep_config, False),
    ("a 5,000-digit sample_rate", huge_number, False),
    ("a WebSocket that never sends its config", silent_socket, False),
    ("Host 127.0.0.1:PORT@evil.example", malformed_host, False),
    ("no API key", no_key, True),
    ("a token forged from the key's digest", forged_token, True),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url", help="the core, e.g. http://127.0.0.1:8080")
    parser.add_argument("--key", help="an API key of the deployment (the key checks run only with one)")
    args = parser.parse_args(argv)
    target = Target(args.url.rstrip("/"), args.key)
    failed = 0
    for name, check, needs_key in CHECKS:
        if needs_key and not target.key:
            outcome = "skipped (no --key)"
        else:
            try:
                outcome = f"ok: {check(target)}"
            except Exception as exc:  # a probe reports every failure and goes on to the next check
                failed += 1
                outcome = f"FAILED: {type(exc).__name__}: {exc}"[:300]
        sys.stdout.write(f"{name:45} {outcome}\n")
        live = httpx.get(f"{target.url}/livez", timeout=10).status_code
        if live != 200:
            failed += 1
            sys.stdout.write(f"{'  /livez after it':45} FAILED: {live}\n")
    sys.stdout.write(f"{len(CHECKS)} checks, {failed} failed\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
