"""Run the core under uvicorn: what ``voxstack serve core`` calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket

from voxstack.config import Settings

logger = logging.getLogger(__name__)

HANDOVER_SECONDS = 0.2


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """Bound here rather than by uvicorn so that a new instance can share the port (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def run(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    import uvicorn

    from voxstack.core.app import create_app
    from voxstack.runtime import CONTROL_SOCKET_ENV, LISTEN_FD_ENV
    from voxstack.server.host import BindError

    core = settings.core
    address = (host or core.host, core.port if port is None else port)
    inherited = os.environ.get(LISTEN_FD_ENV)
    if inherited:
        # The supervisor owns the listening socket: connections wait in its
        # backlog while one instance hands over to the next, and none is lost.
        sock = socket.socket(fileno=int(inherited))
    else:
        try:
            sock = listening_socket(*address, settings.reuse_port)
        except OSError as exc:
            raise BindError(f"cannot listen on {address[0]}:{address[1]}: {exc} (is the port in use?)") from exc
    sockets = [sock]
    control = os.environ.get(CONTROL_SOCKET_ENV)
    if control:
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(control)
        unix.bind(control)
        unix.listen(64)
        sockets.append(unix)
    logger.info("core listening on %s:%d (mode %s)", address[0], sock.getsockname()[1], settings.mode.value)
    _Server = _server_class()
    config = uvicorn.Config(
        create_app(settings),
        log_config=None,  # our logging is configured already
        access_log=False,  # the app logs one line per request itself
        timeout_graceful_shutdown=int(settings.grace_period) or None,
        ws_ping_interval=20,
    )
    _Server(config).run(sockets=sockets)
    return 0


def _server_class():  # type: ignore[no-untyped-def]
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn, but a graceful stop exits 0.

        uvicorn re-raises the SIGTERM it caught once it has shut down, so the
        process would die of the signal; supervisors and orchestrators expect a
        graceful stop to exit 0, as the gRPC services do. First signal: graceful;
        second: force (uvicorn's own handle_exit).
        """

        async def shutdown(self, sockets=None):  # type: ignore[no-untyped-def]
            # Stop accepting first, then give connections accepted a moment ago the
            # time to send their request: uvicorn would close them as idle, and under
            # a supervisor the next instance is already taking new connections.
            for server in self.servers:
                server.close()
            await asyncio.sleep(HANDOVER_SECONDS)
            await super().shutdown(sockets)

        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            previous = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    return Server
