"""``voxstack wyoming``: the speech-to-text and text-to-speech servers in one process, until SIGTERM or Ctrl-C.

Each listens where its URI says (``tcp://HOST:PORT``, ``unix://PATH``, or
``stdio://`` for one of them, as the Rhasspy servers offer) and calls the asr
and tts services with the core's clients (deadlines, retries, request ids,
trace context).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from wyoming.event import async_get_stdin, async_get_stdout

from voxstack.config import Settings
from voxstack.core.clients import Backends
from voxstack.core.wyoming.asr import AsrHandler
from voxstack.core.wyoming.protocol import HEADER_LIMIT, Gate, Handler
from voxstack.core.wyoming.tts import TtsHandler

logger = logging.getLogger(__name__)

Factory = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Handler]


class Listener:
    """One server: its URI, its connections' handlers and their tasks."""

    def __init__(self, name: str, uri: str, factory: Factory) -> None:
        self.name = name
        self.uri = uri
        self.factory = factory
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self.factory(reader, writer).run()
        finally:
            self.tasks.discard(task)

    async def start(self) -> str:
        """Listen; return where (a tcp port of 0 becomes the one picked)."""
        parsed = urlparse(self.uri)
        if parsed.scheme == "tcp":
            if parsed.hostname is None or parsed.port is None:
                raise ValueError(f"{self.uri}: give tcp://HOST:PORT")
            self.server = await asyncio.start_server(self._connected, parsed.hostname, parsed.port, limit=HEADER_LIMIT)
            port = self.server.sockets[0].getsockname()[1]
            return f"tcp://{parsed.hostname}:{port}"
        if parsed.scheme == "unix":
            Path(parsed.path).unlink(missing_ok=True)
            self.server = await asyncio.start_unix_server(self._connected, parsed.path, limit=HEADER_LIMIT)
            return self.uri
        raise ValueError(f"{self.uri}: only tcp:// and unix:// listen (stdio:// serves one client)")

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def factories(settings: Settings, backends: Backends) -> dict[str, Factory]:
    limits = settings.wyoming
    asr_gate, tts_gate = Gate(limits.max_connections), Gate(limits.max_connections)
    return {
        "asr": lambda r, w: AsrHandler(backends, settings.asr.max_audio_seconds, r, w, limits, asr_gate),
        "tts": lambda r, w: TtsHandler(backends, r, w, limits, tts_gate),
    }


async def _serve_stdio(factory: Factory) -> None:
    reader = await async_get_stdin()
    writer = await async_get_stdout()
    await factory(reader, writer).run()


async def serve(settings: Settings) -> None:
    """Run the configured servers until a signal (or, over stdio, until stdin ends)."""
    uris = {"asr": settings.wyoming.asr_uri, "tts": settings.wyoming.tts_uri}
    uris = {name: uri for name, uri in uris.items() if uri}
    stdio = [name for name, uri in uris.items() if uri.startswith("stdio://")]
    if not uris:
        raise ValueError("both servers are off: set VOXSTACK_WYOMING__ASR_URI or VOXSTACK_WYOMING__TTS_URI")
    if len(stdio) > 1:
        raise ValueError("only one server can use stdio://")
    backends = Backends(settings)
    made = factories(settings, backends)
    listeners = [Listener(name, uri, made[name]) for name, uri in uris.items() if name not in stdio]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        for listener in listeners:
            where = await listener.start()
            logger.info("wyoming %s server listening on %s", listener.name, where)
        health = await backends.health()
        for stage in ("asr", "tts"):
            if health[stage]["status"] != "SERVING":
                logger.warning("%s at %s is %s", stage, health[stage]["address"], health[stage]["status"])
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
        if stdio:
            logger.info("wyoming %s server on stdin/stdout", stdio[0])
            waits.append(asyncio.ensure_future(_serve_stdio(made[stdio[0]])))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()
    finally:
        await asyncio.gather(*(listener.close() for listener in listeners))
        await backends.close()
        logger.info("wyoming servers stopped")


def run(settings: Settings) -> int:
    asyncio.run(serve(settings))
    return 0
