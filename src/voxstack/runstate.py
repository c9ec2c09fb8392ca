"""The run-state record of `voxstack up`/`dev`: which mode runs, its PIDs and ports, under a lock.

One supervisor at a time holds ``run.lock`` (an flock, released by the kernel
when the process dies, so a crash never leaves a stale lock). ``run.json``
says what runs; a record whose supervisor is gone is stale and is cleaned.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/voxstack``, else ``~/.local/state/voxstack``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "voxstack"


class RecordValue(str, Enum):
    """A value of the run record: a string in run.json, in logs and in status lines alike."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class ServiceStatus(RecordValue):
    """Where a service is (its record's ``state``)."""

    STARTING = "starting"
    SERVING = "serving"
    UNHEALTHY = "unhealthy"  # running, but its health check does not answer
    RELOADING = "reloading"
    FAILED = "failed"
    BACKOFF = "backoff"  # waiting to restart after a crash
    STOPPED = "stopped"


class SpareState(RecordValue):
    """How far a service's warm spare is (its record's ``spare``)."""

    NONE = ""
    IMPORTING = "importing code"
    CODE_READY = "code ready"
    LOADING_ENGINE = "loading engine"
    ENGINE_READY = "engine ready"


class ReloadPath(RecordValue):
    """How a service's last start went (its record's ``reload_path``)."""

    COLD = "cold start"
    WARM = "warm spare"  # a spare with no engine of its own to keep
    ENGINE_KEPT = "engine kept"  # a spare's loaded engine serves


@dataclass
class ServiceState:
    state: str = ServiceStatus.STARTING
    pid: int = 0
    port: int = 0
    generation: int = 0
    last_reload: float = 0.0
    last_reload_seconds: float = 0.0
    last_error: str = ""
    restarts: int = 0
    started: float = 0.0  # when the current instance began serving (wall clock)
    history: list[dict[str, Any]] = field(default_factory=list)  # recent reloads: at, seconds, ok, files
    backoff_seconds: float = 0.0  # the wait before the next restart, while in backoff
    debug_port: int = 0  # debugpy's port, when this service runs under the debugger
    error_trace: str = ""  # the traceback (or last output) behind last_error
    reload_path: str = ""  # how the last start went: a ReloadPath, and why a spare could not serve
    rss_bytes: int = 0  # resident memory of the serving instance
    spare_rss_bytes: int = 0  # and of its warm spare (with an engine: a second copy of the model)
    spare: str = SpareState.NONE  # how far the warm spare is
    modules: list[str] = field(default_factory=list)  # what the instance said it loaded: voxstack's, dev tools'


@dataclass
class RunRecord:
    mode: str
    supervisor_pid: int
    started: float = field(default_factory=time.time)
    services: dict[str, ServiceState] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        known = ServiceState.__dataclass_fields__
        services = {
            k: ServiceState(**{f: x for f, x in v.items() if f in known}) for k, v in data.get("services", {}).items()
        }
        return cls(data["mode"], data["supervisor_pid"], data.get("started", 0.0), services)


class AlreadyRunning(RuntimeError):
    """Another supervisor holds the lock; the message says what runs and how to switch."""

    def __init__(self, record: RunRecord | None) -> None:
        self.record = record
        what = f"voxstack {'up' if record and record.mode == 'prod' else 'dev'}" if record else "another voxstack"
        pid = f" (pid {record.supervisor_pid})" if record else ""
        super().__init__(
            f"{what} is already running{pid}. Stop it with `voxstack down`, "
            "or pass --replace to stop it and start this one."
        )


class RunState:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.record_path = state_dir / "run.json"
        #: The verdicts of the last replay of pinned conversations (`voxstack dev --replay`).
        self.replays_path = state_dir / "replays.json"
        self.replay_audio = state_dir / "replays"  # their new replies' audio, NAME.wav
        self.lock_path = state_dir / "run.lock"
        self.logs = state_dir / "logs"
        self.sockets = state_dir / "sockets"
        self._lock: IO[str] | None = None

    def read(self) -> RunRecord | None:
        """The record, or None when nothing runs (a stale record is removed)."""
        try:
            record = RunRecord.from_json(json.loads(self.record_path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not pid_alive(record.supervisor_pid) or not self._locked_by_someone():
            with contextlib.suppress(OSError):
                self.record_path.unlink()
            return None
        return record

    def _locked_by_someone(self) -> bool:
        if self._lock is not None:
            return True
        try:
            with self.lock_path.open("a") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(f, fcntl.LOCK_UN)
                return False
        except OSError:
            return False

    def acquire(self, mode: str, replace: bool = False, timeout: float = 30.0) -> None:
        """Take the lock for this process; with ``replace``, stop whoever holds it first."""
        self.make_dirs()
        handle = self.lock_path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = self.read()
            if not replace:
                handle.close()
                raise AlreadyRunning(record) from None
            if record is not None:
                stop_pid(record.supervisor_pid, timeout)
            fcntl.flock(handle, fcntl.LOCK_EX)  # returns once the old supervisor is gone
        self._lock = handle
        self.write(RunRecord(mode, os.getpid()))

    def make_dirs(self) -> None:
        """The state folder and its logs and sockets, this user's only: logs may quote what callers sent,
        and control sockets answer anyone who can reach them."""
        for folder in (self.dir, self.logs, self.sockets):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                folder.chmod(0o700)
            except PermissionError:  # a folder someone else made for us (a mounted volume): theirs to guard
                if folder == self.sockets:
                    raise

    def open_log(self, name: str) -> IO[str]:
        """``logs/NAME.log`` for appending, readable by this user only."""
        self.make_dirs()
        path = self.logs / f"{name}.log"
        handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a")
        os.chmod(path, 0o600)  # a file made by an older version keeps its mode otherwise
        return handle

    def write(self, record: RunRecord) -> None:
        _write_private(self.record_path, asdict(record))

    def write_replays(self, replays: dict[str, Any]) -> None:
        _write_private(self.replays_path, replays)

    def read_replays(self) -> dict[str, Any]:
        """The last replay's verdicts ({} before the first)."""
        try:
            data = json.loads(self.replays_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.record_path.unlink()
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def stop_pid(pid: int, timeout: float) -> bool:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; True when it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return not pid_alive(pid)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """JSON to ``path``, readable by this user only, whole or not at all."""
    tmp = path.with_suffix(".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(json.dumps(data, indent=2))
    os.replace(tmp, path)
