"""Where a client's channel goes: one backend, or several balanced per call.

A target is one of:
- ``HOST:PORT``: one backend, one connection (gRPC's default ``pick_first``);
- a list, ``10.0.0.1:50051,10.0.0.2:50051``: those backends (IP literals, since
  a fixed list is never resolved again; ``localhost`` means 127.0.0.1);
- a gRPC name URI, ``dns:///asr:50051`` (every address the name resolves to,
  resolved again when a connection closes, so replicas that come and go are
  followed), ``dns://SERVER:PORT/NAME:PORT``, ``ipv4:...`` or ``ipv6:...``.

Targets that may name several backends are balanced per call, not per
connection (one HTTP/2 connection would otherwise carry every call to one
backend): ``round_robin`` over the backends whose connection is ready, and
client-side health checking over ``grpc.health.v1``, so a replica that says
NOT_SERVING (loading, stopping) gets no new calls. One backend keeps
``pick_first`` without health checking: a supervised reload hands the port over
between instances, and calls refused in that moment are retried by the caller.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

# URI schemes of gRPC's own name resolvers that the core accepts.
SCHEMES = ("dns:", "ipv4:", "ipv6:")
#: The service name whose health the balancer watches: the server's overall health.
HEALTH_SERVICE = ""
#: Shortest wait between two DNS resolutions of one target (gRPC's default is 30 s): a replica
#: that scaled in or out is followed as soon as a connection closes.
DNS_MIN_INTERVAL_MS = 1000

SERVICE_CONFIG = json.dumps(
    {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": HEALTH_SERVICE}}
)


class TargetError(ValueError):
    """An address that names no backend the core can reach."""


def _endpoint(entry: str) -> tuple[int, str]:
    """(IP version, ``host:port`` as gRPC's ipv4:/ipv6: lists want it) of one list entry."""
    host, sep, port = entry.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise TargetError(f"{entry!r} is not HOST:PORT")
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise TargetError(
            f"{entry!r}: a list of backends takes IP addresses (a name is resolved once only); "
            "for a name with several addresses use dns:///NAME:PORT"
        ) from None
    return ip.version, f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def grpc_target(address: str) -> str:
    """The target to open a channel on: a list becomes an ``ipv4:``/``ipv6:`` URI, the rest is kept."""
    address = address.strip()
    if not address:
        raise TargetError("an empty address")
    if address.startswith(SCHEMES) or address.startswith("unix:"):
        return address
    if "," not in address:
        return address
    endpoints = [_endpoint(entry) for entry in address.split(",") if entry.strip()]
    versions = {version for version, _ in endpoints}
    if len(versions) != 1:
        raise TargetError(f"{address!r} mixes IPv4 and IPv6 addresses: use one family per list")
    return f"ipv{versions.pop()}:" + ",".join(endpoint for _, endpoint in endpoints)


def balanced(address: str) -> bool:
    """Whether ``address`` may name several backends (then calls are balanced and health-checked)."""
    return grpc_target(address).startswith(SCHEMES)


def channel_options(address: str) -> list[tuple[str, Any]]:
    """Channel arguments for ``address``: per-call balancing and health checking when it is balanced."""
    if not balanced(address):
        return []
    return [
        ("grpc.service_config", SERVICE_CONFIG),
        ("grpc.dns_min_time_between_resolutions_ms", DNS_MIN_INTERVAL_MS),
    ]
