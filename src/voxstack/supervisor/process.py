"""One running instance of a service: a child process in its own process group.

Its output is forwarded line by line (to the terminal and the service's log
file) and the last lines are kept, so a failed start can be reported with its
traceback's file and line. Readiness is asked on the instance's private
control socket, never on the shared public port. Stopping is always bounded:
SIGTERM to the group, the grace period, then SIGKILL to the whole group
(grandchildren included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import grpc

from voxstack.health import check_channel, http_alive
from voxstack.registry import SERVER_ENTRY, SUPERVISOR_FD_ENV
from voxstack.runstate import SpareState
from voxstack.supervisor.spare import START

logger = logging.getLogger(__name__)

# A message's longest line: "loaded" lists every module a service imported (thousands with a model's libraries).
MESSAGE_LIMIT = 2**24
_TRACE_LOCATION = re.compile(r'File "([^"]+)", line (\d+)')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Instance:
    """A child process serving one service."""

    def __init__(
        self,
        service: str,
        generation: int,
        argv: Sequence[str],
        env: dict[str, str],
        control_socket: Path,
        *,
        http: bool,
        pass_fds: Sequence[int] = (),
        log_file: IO[str] | None = None,
        echo: Callable[[str], None] | None = None,
        spare: bool = False,
        engine: str = "",
        preload: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.service = service
        self.generation = generation
        self.argv = list(argv)
        self.env = env
        self.control_socket = control_socket
        self.http = http
        self.pass_fds = tuple(pass_fds)
        self.log_file = log_file
        self.echo = echo
        #: A warm spare (see spare.py): started early, waits for activate().
        self.spare = spare
        #: The engine a spare prepares ("module:prepare"), or "".
        self.engine = engine
        #: What a spare imports ahead: {"imports": third-party modules, "modules": voxstack modules}.
        self.preload = dict(preload or {})
        #: What a spare said: its engine's files ({file: sha256}), whether it loaded the engine, its code's files.
        self.engine_files: dict[str, str] | None = None
        self.engine_loaded: bool | None = None
        self.code_files: dict[str, str] | None = None
        #: What the instance said once serving: the modules it loaded (voxstack's and dev tools'), and the rest.
        self.modules: list[str] | None = None
        self.imports: list[str] | None = None
        self.said = asyncio.Event()  # set at each message (and when the channel closes)
        self.proc: asyncio.subprocess.Process | None = None
        self.tail: deque[str] = deque(maxlen=200)
        self._pump: asyncio.Task[None] | None = None
        self._listen: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.control_socket.unlink()
        # Its messages come on a pipe of their own: its stdout is the service's log.
        ours, theirs = os.pipe()
        env, pass_fds = {**self.env, SUPERVISOR_FD_ENV: str(theirs)}, (*self.pass_fds, theirs)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                env=env,
                stdin=asyncio.subprocess.PIPE if self.spare else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
                pass_fds=pass_fds,
            )
        except BaseException:
            os.close(ours)
            raise
        finally:
            os.close(theirs)
        self._pump = asyncio.create_task(self._forward())
        self._listen = asyncio.create_task(self._hear(ours))
        if self.spare:
            await self._send(json.dumps(self.preload))

    async def activate(self) -> None:
        """Tell a warm spare to become the service."""
        await self._send(START)
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()

    async def _send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await self.proc.stdin.drain()

    async def _hear(self, fd: int) -> None:
        """The instance's messages, one JSON line each, until its end of the pipe closes (it exits)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MESSAGE_LIMIT)
        with os.fdopen(fd, "rb") as pipe:
            transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
            try:
                while line := await reader.readline():
                    with contextlib.suppress(ValueError):
                        self._heard(json.loads(line))
            finally:
                transport.close()
                self.said.set()

    def _heard(self, message: Any) -> None:
        event = message.get("event") if isinstance(message, dict) else None
        if event == "engine":
            self.engine_files = dict(message.get("files") or {})
        elif event == "engine_ready":
            self.engine_loaded = bool(message.get("loaded"))
        elif event == "code":
            self.code_files = dict(message.get("files") or {})
        elif event == "loaded":
            self.modules = [str(n) for n in message.get("modules") or ()]
            self.imports = [str(n) for n in message.get("imports") or ()]
        self.said.set()

    @property
    def spare_state(self) -> SpareState:
        """How far this spare is, by what it said."""
        if self.engine and self.engine_loaded is None:
            return SpareState.LOADING_ENGINE
        if self.engine and self.engine_loaded:
            return SpareState.ENGINE_READY
        return SpareState.CODE_READY if self.code_files is not None else SpareState.IMPORTING

    async def _forward(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            self.tail.append(_ANSI.sub("", text))
            if self.echo is not None:
                self.echo(text)
            if self.log_file is not None:
                self.log_file.write(_ANSI.sub("", text) + "\n")
                self.log_file.flush()

    async def wait_serving(self, timeout: float) -> bool:
        """True once this instance itself answers SERVING on its control socket.

        False if the process exits or the time runs out. One channel serves all
        the polls of a start.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Reconnect at once when the socket appears: grpc's default backoff would add a second.
        fast = [(f"grpc.{k}_reconnect_backoff_ms", 20) for k in ("initial", "min", "max")]
        async with grpc.aio.insecure_channel(f"unix:{self.control_socket}", options=fast) as channel:
            while loop.time() < deadline:
                if not self.alive:
                    return False
                if self.control_socket.exists() and await self._serving(channel):
                    return True
                await asyncio.sleep(0.02)
        return False

    async def healthy(self, timeout: float) -> bool:
        """One health check of this very instance on its control socket (a stopped process answers nothing)."""
        if not self.alive or not self.control_socket.exists():
            return False
        if self.http:
            return await http_alive(self.control_socket, timeout)
        async with grpc.aio.insecure_channel(f"unix:{self.control_socket}") as channel:
            return await self._serving(channel, timeout)

    async def _serving(self, channel: grpc.aio.Channel, timeout: float = 1.0) -> bool:
        if self.http:
            return await http_alive(self.control_socket, timeout)
        return (await check_channel(channel, str(self.control_socket), timeout=timeout)).serving

    async def wait_not_accepting(self, timeout: float) -> bool:
        """True once this instance takes no new connection (its server closed its listeners, or it exited).

        A service closes its public listener and its control socket in the same
        step of its graceful stop, so a refused connect on the control socket
        says the shared public port no longer hands this instance a client.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.alive and loop.time() < deadline:
            if not await _accepts(self.control_socket):
                return True
            await asyncio.sleep(0.005)
        return not self.alive

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        for task in (self._pump, self._listen):
            if task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 2)
        return code

    async def stop(self, grace: float) -> None:
        """SIGTERM to the group; after ``grace`` (plus a margin), SIGKILL to the group."""
        if self.proc is None:  # never started (a spare whose start was cancelled): only its files
            self.remove_files()
            return
        if self.alive:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace + 2.0)
            except asyncio.TimeoutError:
                logger.warning(
                    "%s (pid %d) did not stop in %.1f s: killing its process group", self.service, self.pid, grace
                )
        _signal_group(self.proc.pid, signal.SIGKILL)  # whatever is left of the group, grandchildren too
        await self.wait()
        self.remove_files()

    def remove_files(self) -> None:
        """The control socket, once the process is gone."""
        with contextlib.suppress(FileNotFoundError):
            self.control_socket.unlink()

    def exit_reason(self, code: int) -> str:
        """Why the process ended: the signal that killed it, else the last error it printed."""
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        return f"exited with code {code}: {self.failure()}"

    def trace(self, limit: int = 60) -> str:
        """The output from the last traceback on (or the last lines), for showing where it failed."""
        lines = [line.rstrip() for line in self.tail if line.strip()]
        starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
        return "\n".join(lines[starts[-1] if starts else -10 :][-limit:])

    def failure(self) -> str:
        """The last error in the output, with the file and line it points at."""
        lines = [line.strip() for line in self.tail if line.strip()]
        locations = [m for line in lines for m in [_TRACE_LOCATION.search(line)] if m]
        error = next(
            (line for line in reversed(lines) if re.match(r"^(\w+\.)*\w*(Error|Exception)\b", line)),
            lines[-1] if lines else "no output",
        )
        if locations:
            path, line = locations[-1].groups()
            return f"{error} ({path}:{line})"
        return error


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def spare_argv(service: str, engine: str = "") -> list[str]:
    """The command of a warm spare of one service; with ``engine`` (the registry's "module:prepare"), it loads
    the service's engine ahead."""
    return [sys.executable, str(Path(__file__).with_name("spare.py")), engine, service]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (0 if it is gone or unknown)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def python_argv(service: str, debug: tuple[str, int, bool] | None = None) -> list[str]:
    """The command that runs one service (the lean entry); under debugpy when ``debug`` = (host, port, wait)."""
    if debug is None:
        return [sys.executable, "-m", SERVER_ENTRY, service]
    host, port, wait = debug
    return [
        sys.executable, "-m", "debugpy", "--listen", f"{host}:{port}", *(["--wait-for-client"] if wait else []),
        "-m", SERVER_ENTRY, service,
    ]  # fmt: skip


async def _accepts(path: Path) -> bool:
    """A unix socket at ``path`` takes a connection now (closed at once: no request is sent)."""
    try:
        _, writer = await asyncio.open_unix_connection(str(path))
    except OSError:  # refused, or the file is gone
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
