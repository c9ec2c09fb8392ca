"""The one health client: gRPC health (grpc.health.v1), the core's HTTP health, and a control socket.

The command line (``voxstack health``, ``status``), container probes, the
supervisor (is this very instance SERVING?) and the core (``/healthz``) all
ask through these functions, so "healthy" means the same everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from voxstack.config import TlsSettings
from voxstack.tls import open_channel

SERVING = "SERVING"
NOT_SERVING = "NOT_SERVING"
#: Nothing answers at the address (or it did not answer in time).
UNREACHABLE = "UNREACHABLE"
_DOWN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True)
class HealthResult:
    address: str
    service: str
    serving: bool
    #: SERVING, NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN, or UNREACHABLE.
    status: str
    detail: str = ""

    def describe(self) -> str:
        what = f"{self.service or 'server'} at {self.address}"
        return f"{what}: {self.status}" + (f" ({self.detail})" if self.detail else "")


def _from_reply(address: str, service: str, reply: health_pb2.HealthCheckResponse) -> HealthResult:
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return HealthResult(address, service, reply.status == health_pb2.HealthCheckResponse.SERVING, status)


def _from_error(address: str, service: str, err: grpc.RpcError) -> HealthResult:
    code = err.code() if isinstance(err, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = err.details() if isinstance(err, grpc.Call) else str(err)
    if code is grpc.StatusCode.NOT_FOUND:
        return HealthResult(address, service, False, "SERVICE_UNKNOWN", "the server does not know it")
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return HealthResult(address, service, False, "UNKNOWN", "no health service there")
    what = "nothing answering" if code in _DOWN else code.name
    return HealthResult(address, service, False, UNREACHABLE, f"{what}: {details}")


def check_health(address: str, service: str = "", timeout: float = 3.0, tls: TlsSettings | None = None) -> HealthResult:
    """One gRPC Check call (over TLS when ``tls`` is enabled); never raises for a server that is down or not serving."""
    with open_channel(address, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as err:
            return _from_error(address, service, err)
    return _from_reply(address, service, reply)


async def check_channel(
    channel: grpc.aio.Channel, address: str, service: str = "", timeout: float = 1.5, *, wait_for_ready: bool = False
) -> HealthResult:
    """One gRPC Check call on an open channel (the caller's own, reused between checks)."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout, wait_for_ready=wait_for_ready
        )
    except grpc.aio.AioRpcError as err:
        return _from_error(address, service, err)
    return _from_reply(address, service, reply)


def read_core_health(base_url: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """The body of the core's ``GET /healthz`` (200 or 503 alike), or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/healthz", timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        try:
            body = json.loads(err.read() or b"{}")
        except ValueError:
            body = {}
        body.setdefault("status", f"HTTP {err.code}")
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else {}


def check_http_health(address: str, timeout: float = 3.0) -> HealthResult:
    """The core's health: SERVING when /healthz says ok, NOT_SERVING (with the failing services) otherwise.

    ``address`` is HOST:PORT (plain HTTP) or a base URL (``https://...``, verified against the system's CAs
    or ``SSL_CERT_FILE``)."""
    body = read_core_health(address if "://" in address else f"http://{address}", timeout)
    if body is None:
        return HealthResult(address, "core", False, UNREACHABLE, "nothing answering")
    if body.get("status") == "ok":
        return HealthResult(address, "core", True, SERVING, f"mode {body.get('mode', '?')}")
    failing = ", ".join(body.get("failing", [])) or str(body.get("status", "?"))
    return HealthResult(address, "core", False, NOT_SERVING, f"failing: {failing}")


async def http_alive(control_socket: Path, timeout: float = 1.0) -> bool:
    """Whether the HTTP server on a unix control socket answers ``GET /livez`` with 200."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(control_socket)), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        writer.write(b"GET /livez HTTP/1.1\r\nHost: control\r\nConnection: close\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), timeout)
        return status.startswith(b"HTTP/1.1 200")
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
