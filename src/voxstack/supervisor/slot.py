"""One supervised service: its bookkeeping (Slot) and how its next instance is made.

The Supervisor (supervisor/supervisor.py) decides when an instance starts,
replaces another or is restarted; this module holds what it keeps of each
service and the command line and environment an instance gets.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from voxstack.config import GrpcServiceSettings, Settings, env_name
from voxstack.registry import CONTROL_SOCKET_ENV, GENERATION_ENV, LISTEN_FD_ENV, MODE_ENV, SERVICES
from voxstack.runstate import ReloadPath, ServiceState, SpareState
from voxstack.supervisor.process import Instance, python_argv, rss_bytes, spare_argv

# Reloads kept per service in the run state (the dev dashboard's chart).
RELOAD_HISTORY = 20
RESTART_WAIT_MAX = 3600  # the setting's largest value: "until the call's deadline"


@dataclass(frozen=True)
class DebugSpec:
    service: str
    host: str = "127.0.0.1"
    port: int = 5678
    wait: bool = False


def debugged(debug: DebugSpec | None, name: str) -> bool:
    """Whether service ``name`` runs under the debugger."""
    return debug is not None and debug.service == name


@dataclass
class Slot:
    """One service: its current instance and its bookkeeping."""

    name: str
    state: ServiceState = field(default_factory=ServiceState)
    current: Instance | None = None
    #: A warm spare for the next start (dev mode), or None.
    spare: Instance | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0
    log: IO[str] | None = None
    #: How the last instance that failed exited (None: it did not exit, or none failed).
    exit_code: int | None = None
    #: Its last_error is about settings that do not load (cleared once they do).
    settings_error: bool = False

    def failed(self, error: str, trace: str, code: int | None) -> None:
        """Record why an instance did not serve or stopped serving (``code``: how it exited, None if it did not)."""
        self.state.last_error, self.state.error_trace = error, trace
        self.exit_code = code
        self.settings_error = False

    def remember(self, reason: str, saved_at: float | None, *, ok: bool) -> None:
        """A reload in the service's recent history (what the dev dashboard charts)."""
        now = time.time()
        took = round(now - saved_at, 3) if saved_at is not None else 0.0
        entry = {"at": now, "seconds": took, "ok": ok, "files": reason, "path": self.state.reload_path}
        self.state.history = [*self.state.history, entry][-RELOAD_HISTORY:]

    def measure(self) -> None:
        """Resident memory of the serving instance and the spare, and how far the spare is, into the state."""
        spare = self.spare if self.spare is not None and self.spare.alive else None
        self.state.rss_bytes = rss_bytes(self.current.pid) if self.current is not None else 0
        self.state.spare_rss_bytes = rss_bytes(spare.pid) if spare is not None else 0
        self.state.spare = spare.spare_state if spare is not None else SpareState.NONE
        self.state.modules = (self.current.modules or []) if self.current is not None else []


@dataclass
class Launcher:
    """What every instance the supervisor starts shares: the mode, the control sockets' directory, the core's
    listening socket (once open), the debugger and where output is echoed."""

    mode: str
    sockets: Path
    core_socket: socket.socket | None = None
    debug: DebugSpec | None = None
    echo: Callable[[str], None] | None = None

    def instance(self, slot: Slot, settings: Settings, preload: Instance | None = None) -> Instance:
        """The next instance of a slot, with ``settings``; given ``preload``, a warm spare importing ahead what that
        (running) instance said it had loaded."""
        generation = slot.state.generation + 1
        env = dict(SERVICES[slot.name].env) | dict(os.environ)  # the user's settings win
        if slot.name == "core" and "restart_wait_seconds" not in settings.core.model_fields_set:
            # This supervisor brings every service back: the core's calls wait for one up to their deadline.
            env[env_name(("core", "restart_wait_seconds"))] = str(RESTART_WAIT_MAX)
        env[MODE_ENV] = self.mode
        env[GENERATION_ENV] = str(generation)
        control = self.sockets / f"{slot.name}-{os.getpid()}-{generation}.sock"
        env[CONTROL_SOCKET_ENV] = str(control)
        pass_fds: tuple[int, ...] = ()
        if slot.name == "core" and self.core_socket is not None:
            env[LISTEN_FD_ENV] = str(self.core_socket.fileno())
            pass_fds = (self.core_socket.fileno(),)
        debug = None
        if self.debug is not None and debugged(self.debug, slot.name):
            debug = (self.debug.host, self.debug.port, self.debug.wait)
        section = settings.service(slot.name)
        # A stand-in (settings: NAME.factory, which the child serves instead) has no engine of ours to load ahead.
        stand_in = isinstance(section, GrpcServiceSettings) and bool(section.factory)
        engine = SERVICES[slot.name].engine if preload is not None and settings.spare_engines else ""
        engine = "" if stand_in else engine
        lists = {"imports": preload.imports or [], "modules": preload.modules or []} if preload is not None else {}
        return Instance(
            slot.name,
            generation,
            spare_argv(slot.name, engine) if preload is not None else python_argv(slot.name, debug),
            env,
            control,
            http=SERVICES[slot.name].kind == "http",
            pass_fds=pass_fds,
            log_file=slot.log,
            echo=self.echo,
            spare=preload is not None,
            engine=engine,
            preload=lists,
        )


def spare_path(spare: Instance) -> str:
    """How a start from a spare that can serve the code on disk goes, by what the spare has loaded."""
    if not spare.engine:
        return ReloadPath.WARM
    if spare.engine_loaded is None:
        return f"{ReloadPath.ENGINE_KEPT.value} (the spare was still loading it)"
    return ReloadPath.ENGINE_KEPT if spare.engine_loaded else f"{ReloadPath.WARM.value} (no engine to load)"
