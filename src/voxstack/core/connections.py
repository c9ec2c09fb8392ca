"""Connection limits of the core's HTTP server: a cap below the file-descriptor limit, and a header timeout.

uvicorn closes a keep-alive connection that stays idle, but not one that never
finishes its request headers (a silent or slowloris client), and it accepts
connections until the process runs out of file descriptors, at which point
health checks fail with everything else. Here each connection must finish its
headers within ``header_timeout``; and at the cap, the connection that has
waited longest for a request is closed to make room (as nginx reuses idle
keep-alive connections), so a flood of idle sockets cannot lock out a health
probe; only when every connection is busy is the new one refused. Either is
logged, at most once per ``LOG_EVERY`` seconds with a count.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from voxstack.config import CoreSettings

logger = logging.getLogger(__name__)

LOG_EVERY = 10.0
#: File descriptors kept free beyond the connection cap: log files, gRPC channels, model files.
FD_RESERVE = 128


def raise_fd_limit() -> int:
    """Lift the soft file-descriptor limit to the hard one; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(wanted: int, fd_limit: int) -> int:
    """The cap actually applied: ``wanted``, but always below the descriptors the process may open."""
    return max(1, min(wanted, fd_limit - FD_RESERVE))


class Tally:
    """Connections closed or refused at the cap, logged in batches rather than one line each."""

    def __init__(self) -> None:
        self.evicted = 0
        self.refused = 0
        self.logged = 0.0

    def note(self, *, evicted: bool, cap: int) -> None:
        if evicted:
            self.evicted += 1
        else:
            self.refused += 1
        now = time.monotonic()
        if now - self.logged >= LOG_EVERY:
            logger.warning(
                "at the connection cap (%d): closed %d idle connections and refused %d new ones",
                cap,
                self.evicted,
                self.refused,
            )
            self.evicted = self.refused = 0
            self.logged = now


def guarded_protocol(max_connections: int, header_timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the cap and the header timeout (``Config(http=...)``)."""
    tally = Tally()

    class Guarded(HttpToolsProtocol):
        waiting_since: float | None = None
        header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            sock = transport.get_extra_info("socket")
            local = sock is not None and sock.family == socket.AF_UNIX  # the supervisor's control socket
            if not local and len(self.connections) >= max_connections and not self._evict_one():
                tally.note(evicted=False, cap=max_connections)
                transport.abort()
                return
            super().connection_made(transport)
            self._await_request()

        def _evict_one(self) -> bool:
            idle = [c for c in self.connections if isinstance(c, Guarded) and c.waiting_since is not None]
            if not idle:
                return False
            oldest = min(idle, key=lambda c: c.waiting_since or 0.0)
            oldest._stop_timer()
            oldest.transport.abort()
            self.connections.discard(oldest)
            tally.note(evicted=True, cap=max_connections)
            return True

        def _await_request(self) -> None:
            self.waiting_since = time.monotonic()
            self._stop_timer()
            self.header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _stop_timer(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _headers_late(self) -> None:
            self.header_timer = None
            if self.waiting_since is not None and not self.transport.is_closing():
                logger.debug("closing a connection that sent no complete request in %g s", header_timeout)
                self.transport.close()

        def on_headers_complete(self) -> None:
            self.waiting_since = None
            self._stop_timer()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self._await_request()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.transport is None:
                return  # refused in connection_made: never set up
            self.waiting_since = None
            self._stop_timer()
            super().connection_lost(exc)

    return Guarded


def server_options(core: CoreSettings) -> dict[str, Any]:
    """uvicorn.Config keywords for the core's connection limits."""
    cap = connection_cap(core.max_connections, raise_fd_limit())
    return {
        "http": guarded_protocol(cap, core.header_timeout),
        "timeout_keep_alive": core.keepalive_timeout,
    }
