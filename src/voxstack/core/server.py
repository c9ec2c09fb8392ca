"""Run the core under uvicorn: what ``voxstack serve core`` calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from voxstack.config import Settings

if TYPE_CHECKING:
    import uvicorn

logger = logging.getLogger(__name__)

# How long a stopping instance waits for its keep-alive connections to send
# their next request (answered with `Connection: close`) before closing them idle.
DRAIN_SECONDS = 1.0


class CloseWhenDraining:
    """ASGI wrapper: once draining, every response says `Connection: close`.

    Closing an idle keep-alive connection races with a client that is sending
    its next request on it right then (the client sees a dropped request), so a
    stopping instance answers that request instead, and the client's next one
    opens a connection to the new instance.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._draining = False

    @property
    def draining(self) -> bool:
        return self._draining

    @draining.setter
    def draining(self, value: bool) -> None:
        # The app sees it too: its endless streams (the dev dashboard's events) end so the instance can stop.
        self._draining = value
        state = getattr(self.app, "state", None)
        if state is not None:
            state.draining = value
            drain = getattr(state, "drain", None)
            if value and drain is not None:
                drain.started.set()  # conversations hand over at their next pause

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Any) -> None:
            if message["type"] == "http.response.start" and self.draining:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


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

    from voxstack.config import Mode
    from voxstack.core.app import create_app
    from voxstack.core.auth import ApiKeys, check_exposure
    from voxstack.core.connections import server_options
    from voxstack.registry import CONTROL_SOCKET_ENV, LISTEN_FD_ENV
    from voxstack.server.host import BindError

    core = settings.core
    address = (host or core.host, core.port if port is None else port)
    keys = ApiKeys.from_settings(core)  # a bad keys file stops the start here, before any bind
    core = core.model_copy(update={"host": address[0]})
    settings = settings.model_copy(update={"core": core})
    check_exposure(core, settings.mode is Mode.PROD, keys)
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
    scheme = "https" if core.tls_cert_file else "http"
    logger.info(
        "core listening on %s://%s:%d (mode %s)", scheme, address[0], sock.getsockname()[1], settings.mode.value
    )
    _Server = _server_class()
    app = CloseWhenDraining(create_app(settings, keys))
    config = uvicorn.Config(
        app,
        log_config=None,  # our logging is configured already
        access_log=False,  # the app logs one line per request itself
        # Whole seconds (uvicorn's type); 0 cancels what is in flight at once, it never means "wait forever".
        timeout_graceful_shutdown=math.ceil(settings.grace_period),
        ws_ping_interval=20,
        ws_max_size=settings.core.ws_max_frame_bytes,
        # PCM audio hardly compresses, and tiny compressed frames that inflate to the size limit
        # would let a client push far more audio than it sends bytes.
        ws_per_message_deflate=False,
        # Frames uvicorn reads ahead of the app: few, so a client that leaves is noticed soon.
        ws_max_queue=4,
        server_header=False,  # which server runs here is nobody's business
        ssl_certfile=str(core.tls_cert_file) if core.tls_cert_file else None,
        ssl_keyfile=str(core.tls_key_file) if core.tls_key_file else None,
        **server_options(core),
    )
    _Server(config, app).run(sockets=sockets)
    return 0


def _server_class() -> Callable[[uvicorn.Config, CloseWhenDraining], uvicorn.Server]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn, with a drain that loses no keep-alive request, and a graceful stop that exits 0.

        uvicorn re-raises the SIGTERM it caught once it has shut down, so the
        process would die of the signal; supervisors and orchestrators expect a
        graceful stop to exit 0, as the gRPC services do. First signal: graceful;
        second: force (uvicorn's own handle_exit).
        """

        def __init__(self, config: uvicorn.Config, app: CloseWhenDraining) -> None:
            super().__init__(config)
            self.app = app
            self._loop: asyncio.AbstractEventLoop | None = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self._loop = asyncio.get_running_loop()
            await super().startup(sockets)

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # Stop accepting now rather than at uvicorn's next tick (a tenth of a second later): the next
            # instance shares the listening socket and should take every new connection from here on.
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._stop_accepting)

        def _stop_accepting(self) -> None:
            for server in self.servers:
                server.close()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Stop accepting (under a supervisor the next instance takes new
            # connections), then let open HTTP connections send one more request,
            # answered with `Connection: close`, before uvicorn closes what is idle.
            self._stop_accepting()
            self.app.draining = True
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DRAIN_SECONDS
            while loop.time() < deadline and any(hasattr(c, "cycle") for c in self.server_state.connections):
                await asyncio.sleep(0.02)
            # Conversations close themselves once their current turn is over (uvicorn would cut them
            # mid-reply); what is still open after the grace period is closed by uvicorn, with 1012 too.
            drain = getattr(getattr(self.app.app, "state", None), "drain", None)
            if drain is not None:
                await drain.settled(self.config.timeout_graceful_shutdown or 0)
            await super().shutdown(sockets)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    return Server
