"""Client side of grpc.health.v1: what ``voxstack health`` and container probes call."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


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


def check_health(address: str, service: str = "", timeout: float = 3.0) -> HealthResult:
    """One Check call; never raises for a server that is down or not serving."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as err:
            code = err.code()  # type: ignore[attr-defined]
            if code is grpc.StatusCode.NOT_FOUND:
                return HealthResult(address, service, False, "SERVICE_UNKNOWN", "the server does not know it")
            if code is grpc.StatusCode.UNIMPLEMENTED:
                return HealthResult(address, service, False, "UNKNOWN", "no health service there")
            detail = "nothing answering" if code is grpc.StatusCode.UNAVAILABLE else code.name
            return HealthResult(address, service, False, "UNREACHABLE", f"{detail}: {err.details()}")  # type: ignore[attr-defined]
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return HealthResult(address, service, reply.status == health_pb2.HealthCheckResponse.SERVING, status)


def check_http_health(address: str, timeout: float = 3.0) -> HealthResult:
    """GET /healthz of the core: SERVING on 200, NOT_SERVING (with the failing services) otherwise."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
            return HealthResult(address, "core", True, "SERVING", f"mode {body.get('mode', '?')}")
    except urllib.error.HTTPError as err:
        try:
            body = json.loads(err.read() or b"{}")
        except ValueError:
            body = {}
        failing = ", ".join(body.get("failing", [])) or f"HTTP {err.code}"
        return HealthResult(address, "core", False, "NOT_SERVING", f"failing: {failing}")
    except (OSError, ValueError) as exc:
        return HealthResult(address, "core", False, "UNREACHABLE", f"nothing answering: {exc}")
