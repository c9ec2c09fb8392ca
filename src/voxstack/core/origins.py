"""Which pages may call the core (``Origin``) and under which names it may be reached (``Host``).

A browser sends ``Origin`` with every cross-site request and WebSocket
handshake, and a WebSocket is not covered by CORS at all: without a check any
web page the user opens could talk to a core on their machine. A request whose
``Origin`` is neither the core's own nor in ``cors_origins`` gets 403 (a
WebSocket handshake is refused). ``Host`` guards against DNS rebinding (a
hostile name that resolves to 127.0.0.1 makes its page same-origin): with
``allowed_hosts`` set only those names pass, and a core on loopback without
it accepts only loopback names. Health probes pass regardless.
"""

from __future__ import annotations

import fnmatch
import re
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from voxstack.codes import CloseCode, ErrorCode
from voxstack.core.auth import OPEN_PATHS, is_loopback
from voxstack.core.errors import error_response

LOOPBACK_NAMES = ("localhost", "*.localhost", "127.0.0.1", "::1")


#: A Host header as RFC 9110 has it: a name, an IPv4 address or a bracketed IPv6 address, and a port.
HOST_HEADER = re.compile(r"(?:\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::[0-9]{1,5})?")


def host_name(host: str) -> str | None:
    """``host[:port]`` (or ``[v6]:port``) without the port, lower case; None when it is no such thing
    (``127.0.0.1:8080@evil`` would otherwise pass for 127.0.0.1)."""
    host = host.strip().lower()
    if not HOST_HEADER.fullmatch(host):
        return None
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if ":" in host else host


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` with the default port dropped, lower case."""
    parts = urlsplit(origin.strip().lower())
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return origin.strip().lower()
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if port is not None and port != default:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


class CheckOrigin:
    def __init__(self, app: ASGIApp, *, origins: list[str], hosts: list[str], bound_to: str) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = {normalise_origin(o) for o in origins if o != "*"}
        if hosts:
            self.hosts: list[str] | None = [h.lower() for h in hosts]
        elif is_loopback(bound_to):
            self.hosts = list(LOOPBACK_NAMES)
        else:
            self.hosts = None  # reachable by any name: the operator sets allowed_hosts

    def host_allowed(self, host: str) -> bool:
        name = host_name(host)
        if name is None and host:
            return False  # malformed: refused wherever the core runs
        if self.hosts is None or "*" in self.hosts:
            return True
        return name is not None and any(fnmatch.fnmatchcase(name, pattern) for pattern in self.hosts)

    def origin_allowed(self, origin: str, host: str, scheme: str) -> bool:
        if self.any_origin:
            return True
        wanted = normalise_origin(origin)
        if wanted in self.origins:
            return True
        own = "https" if scheme in ("https", "wss") else "http"
        return wanted == normalise_origin(f"{own}://{host}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        origin = headers.get(b"origin", b"").decode("latin-1")
        if not self.host_allowed(host):
            await self.refuse(scope, receive, send, 400, ErrorCode.HOST_NOT_ALLOWED, "this Host is not served here")
        elif origin and not self.origin_allowed(origin, host, scope.get("scheme", "http")):
            message = "requests from this origin are not allowed (see VOXSTACK_CORE__CORS_ORIGINS)"
            await self.refuse(scope, receive, send, 403, ErrorCode.ORIGIN_NOT_ALLOWED, message)
        else:
            await self.app(scope, receive, send)

    @staticmethod
    async def refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
        if scope["type"] == "websocket":
            await send(
                {"type": "websocket.close", "code": CloseCode.POLICY_VIOLATION}
            )  # before accept: the handshake gets a 403
            return
        await error_response(status, {"error": {"code": code, "message": message}})(scope, receive, send)
