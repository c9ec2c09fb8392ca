"""voxstack services as real subprocesses on free ports, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

from voxstack.config import ENV_PREFIX, env_name
from voxstack.health import check_health, check_http_health
from voxstack.registry import MODE_ENV, SERVER_ENTRY, SERVICES

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` different free ports: each socket is held until all are chosen (free_port() twice in a row
    may give the same port, which a stack's second server then fails to take, or shares)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any voxstack setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return env | dict(extra or {})


def voxstack_command(*args: str) -> list[str]:
    """The ``voxstack`` command line, run by this interpreter."""
    return [sys.executable, "-m", "voxstack", *args]


def serving(name: str, address: str, timeout: float = 1.0) -> bool:
    """Whether the service ``name`` (or a gRPC server of another name) answers SERVING at ``address``."""
    spec = SERVICES.get(name)
    if spec is not None and spec.kind == "http":
        return check_http_health(address, timeout).serving
    return check_health(address, timeout=timeout).serving


def wait_until_serving(
    name: str, address: str, proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 180.0
) -> None:
    """Return once ``address`` answers SERVING; AssertionError if ``proc`` exits first or the time runs out."""
    deadline = time.monotonic() + timeout
    while not serving(name, address):
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode} before SERVING")
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} not SERVING within {timeout} s")
        time.sleep(0.05)


def wait_for_http(url: str, proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Return once ``GET url`` answers 200; AssertionError if ``proc`` exits first or the time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode} before {url} answered")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout} s")
        time.sleep(0.1)


class ServiceProcess:
    """One service run as ``python -m voxstack.server NAME`` (the supervisor's lean entry) on a port.

    ``factory`` serves another ``module:factory`` under the service's name and settings, as the fakes do.
    """

    def __init__(
        self,
        name: str,
        *,
        port: int | None = None,
        mode: str = "dev",
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        host: str = "127.0.0.1",
        factory: str | None = None,
    ) -> None:
        self.name = name
        # What the process serves: the registered service, or another factory (a fake) in its place.
        self.factory = factory or name
        self.host = host
        self.port = port or free_port()
        # Any loopback address: replicas on one port behind one name (127.0.0.1, 127.0.0.2, ...).
        where = {f"VOXSTACK_{name.upper()}__HOST": host} if host != "127.0.0.1" else {}
        # State (a dev core's sessions) of its own, beside its log, unless the caller shares one on purpose:
        # never the user's, which would carry conversations from one run into the next.
        state = {env_name(("state_dir",)): str((log.parent if log is not None else Path(tempfile.mkdtemp())) / "state")}
        self.env = child_env({MODE_ENV: mode, **state, **(env or {}), **where})
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int:
        return self._running().pid

    def start(self) -> ServiceProcess:
        out: IO[bytes] | int = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", SERVER_ENTRY, self.factory, "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        finally:
            if not isinstance(out, int):
                out.close()
        return self

    def _running(self) -> subprocess.Popen[bytes]:
        assert self.proc is not None, "start() first"
        return self.proc

    def send_signal(self, signum: int) -> None:
        self._running().send_signal(signum)

    def poll(self) -> int | None:
        return self._running().poll()

    def wait(self, timeout: float | None = None) -> int:
        return self._running().wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log is not None and self.log.exists() else ""

    def wait_serving(self, timeout: float = 180.0) -> ServiceProcess:
        try:
            wait_until_serving(self.name, self.address, self._running(), timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()[-3000:]}") from None
        return self

    def wait_live(self, timeout: float = 60.0) -> ServiceProcess:
        """For the core: until ``/livez`` answers (``/healthz`` needs the services behind it)."""
        try:
            wait_for_http(f"{self.url}/livez", self._running(), timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()[-3000:]}") from None
        return self

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in ``timeout``; the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode


@contextmanager
def served(
    name: str,
    *,
    port: int | None = None,
    mode: str = "dev",
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    factory: str | None = None,
) -> Iterator[ServiceProcess]:
    """A service started, SERVING, and stopped when the block ends (see ``ServiceProcess``)."""
    process = ServiceProcess(name, port=port, mode=mode, env=env, log=log, factory=factory).start()
    try:
        yield process.wait_serving()
    finally:
        process.stop()


def eventually(check: Callable[[], T], what: str, timeout: float = 30.0, every: float = 0.3) -> T:
    """``check()``'s value once it stops raising AssertionError; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not come within {timeout} s: {exc}") from None
            time.sleep(every)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0, every: float = 0.05) -> None:
    """Return once ``predicate()`` is true; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come within {timeout} s")
        time.sleep(every)
