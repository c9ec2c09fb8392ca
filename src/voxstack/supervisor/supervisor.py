"""Runs the services as child processes and keeps them running: `voxstack up` and `voxstack dev`.

The supervisor knows nothing of files: `reload(names, ...)` is called by the
dev watcher; `voxstack up` never calls it. A reload starts the new instance
beside the old one (same public port: SO_REUSEPORT for gRPC, the supervisor's
own listening socket for the core), switches only when the new one answers
SERVING on its private control socket, then drains and stops the old one. If
the new one fails, the old one keeps serving. A service that dies on its own
is restarted with capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from voxstack.config import Settings
from voxstack.errors import EXIT_STARTUP
from voxstack.metrics.catalog import SupervisorMetrics
from voxstack.metrics.serve import MetricsServer
from voxstack.runstate import ReloadPath, RunRecord, RunState, ServiceStatus
from voxstack.supervisor.process import Instance
from voxstack.supervisor.slot import DebugSpec, Launcher, Slot, debugged, spare_path
from voxstack.supervisor.spare import engine_changes, stub_changes

logger = logging.getLogger(__name__)

BACKOFF_CAP = 30.0
# Reloads kept per service in the run state (the dev dashboard's chart).
RELOAD_HISTORY = 20
STABLE_AFTER = 10.0  # an instance up this long resets the crash backoff
RESTART_WAIT_MAX = 3600  # the setting's largest value: "until the call's deadline"
RETIRE_TIMEOUT = 2.0  # how long a reload waits for the old instance to stop taking connections


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        services: Iterable[str],
        runstate: RunState,
        *,
        debug: DebugSpec | None = None,
        strategy: str = "overlap",
        echo: Callable[[str], None] | None = None,
        start_timeout: float = 180.0,
        spares: bool = False,
    ) -> None:
        self.settings = settings
        self.mode = settings.mode.value
        self.runstate = runstate
        self.debug = debug
        self.strategy = strategy
        self.start_timeout = start_timeout
        # Warm spares make starts faster at the cost of one idle process per service.
        self.spares = spares
        self.slots = {name: Slot(name) for name in services}
        self.record = RunRecord(self.mode, os.getpid(), services={n: s.state for n, s in self.slots.items()})
        self.stopping = asyncio.Event()
        # Cleared while the machine's cores should serve calls alone (dev replays): spares start after.
        self.spares_may_start = asyncio.Event()
        self.spares_may_start.set()
        self.metrics = SupervisorMetrics()
        self._signals = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.launcher = Launcher(self.mode, runstate.sockets, debug=debug, echo=echo)
        self.exit_code = 0

    # ----- lifecycle -------------------------------------------------------

    async def run(
        self,
        on_ready: Callable[[Supervisor], None] | None = None,
        companions: Iterable[Callable[[], Coroutine[Any, Any, None]]] = (),
    ) -> int:
        """Start every service, then serve until a signal; ``companions`` (the dev watcher) run from the start."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)
        metrics_server: MetricsServer | None = None
        try:
            if "core" in self.slots:
                from voxstack.core.server import listening_socket

                core = self.settings.core
                self.launcher.core_socket = listening_socket(core.host, core.port, reuse_port=False)
            for slot in self.slots.values():
                slot.log = self.runstate.open_log(slot.name)
            for companion in companions:
                self.spawn(asyncio.create_task(companion()))
            if self.settings.supervisor_metrics_port:
                metrics_server = MetricsServer(
                    self.metrics.registry, "127.0.0.1", self.settings.supervisor_metrics_port
                ).start()
            await asyncio.gather(*(self._start_first(slot) for slot in self.slots.values()))
            if on_ready is not None and not self.stopping.is_set():
                on_ready(self)
            await self.stopping.wait()
        finally:
            await self.shutdown()
            if metrics_server is not None:
                await asyncio.to_thread(metrics_server.stop)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        return self.exit_code

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals == 1:
            logger.info("received %s: stopping all services", signal.Signals(signum).name)
            self.stopping.set()
            return
        logger.warning("received %s again: killing all services now", signal.Signals(signum).name)
        for slot in self.slots.values():
            for instance in (slot.current, slot.spare):
                if instance is not None and instance.alive:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(instance.pid, signal.SIGKILL)
        os._exit(128 + signum)

    async def shutdown(self) -> None:
        self.stopping.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(t for t in self._tasks), return_exceptions=True)
        instances = [i for s in self.slots.values() for i in (s.current, s.spare) if i is not None]
        await asyncio.gather(*(i.stop(self.settings.grace_period) for i in instances), return_exceptions=True)
        for slot in self.slots.values():
            slot.state.state, slot.state.pid = ServiceStatus.STOPPED, 0
            if slot.log is not None:
                slot.log.close()
        if self.launcher.core_socket is not None:
            self.launcher.core_socket.close()
        self.runstate.release()
        logger.info("all services stopped")

    def spawn(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def save(self) -> None:
        self.measure()
        self.record.services = {n: s.state for n, s in self.slots.items()}
        self.runstate.write(self.record)

    # ----- instances -------------------------------------------------------

    async def _launch(self, slot: Slot) -> Instance | None:
        """Start a new instance and wait until it serves; None (and the error recorded) if it does not."""
        instance, slot.state.reload_path = self._claim_spare(slot)
        if instance is not None:
            slot.state.generation = instance.generation
            await instance.activate()
        else:
            instance = self.launcher.instance(slot, self.settings)
            slot.state.generation = instance.generation
            await instance.start()
        timeout = self.start_timeout * (10 if self.debug and self.debug.wait and debugged(self.debug, slot.name) else 1)
        try:
            if await instance.wait_serving(timeout):
                return instance
        except asyncio.CancelledError:  # the supervisor stops during this start: leave no process behind
            await instance.stop(0)
            raise
        if instance.alive:
            error, code = f"not SERVING within {timeout:.0f} s", None
        else:
            code = await instance.wait()
            error = instance.exit_reason(code)
        await instance.stop(0)
        slot.failed(error, instance.trace(), code)
        return None

    def _adopt(self, slot: Slot, instance: Instance) -> None:
        slot.current = instance
        slot.state.state, slot.state.pid = ServiceStatus.SERVING, instance.pid
        slot.state.port = self.settings.service(slot.name).port
        slot.state.started = time.time()
        slot.state.backoff_seconds = 0.0
        slot.state.debug_port = self.debug.port if self.debug is not None and debugged(self.debug, slot.name) else 0
        self.save()
        self.spawn(asyncio.create_task(self._watch_exit(slot, instance)))
        self.spawn(asyncio.create_task(self._hear_loaded(slot, instance)))
        self.spawn(asyncio.create_task(self._watch_health(slot, instance)))

    async def _hear_loaded(self, slot: Slot, instance: Instance) -> None:
        """Once the instance says what it loaded (it does once it serves): into the run record, and a warm
        spare to import it ahead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while instance.modules is None and slot.current is instance and instance.alive and not self.stopping.is_set():
            instance.said.clear()
            if instance.modules is not None or loop.time() > deadline:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(instance.said.wait(), max(0.0, deadline - loop.time()))
        if instance.modules is None or slot.current is not instance:
            return
        self.save()
        if self.spares and self.strategy == "overlap" and not debugged(self.debug, slot.name):
            await self._prepare_spare(slot, instance)

    async def _watch_health(self, slot: Slot, instance: Instance) -> None:
        """Every health_interval, ask the instance itself: a hung process (SIGSTOP, a deadlock) is not serving."""
        interval = self.settings.health_interval
        while not self.stopping.is_set() and slot.current is instance and instance.alive:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), interval)
            if self.stopping.is_set() or slot.current is not instance or not instance.alive:
                return
            healthy = await instance.healthy(timeout=min(2.0, interval))
            if slot.current is not instance or slot.state.state not in (ServiceStatus.SERVING, ServiceStatus.UNHEALTHY):
                continue  # a reload or a restart is under way: it owns the state
            state = ServiceStatus.SERVING if healthy else ServiceStatus.UNHEALTHY
            rss, spare_rss = slot.state.rss_bytes, slot.state.spare_rss_bytes
            self.measure()
            grown = max(abs(rss - slot.state.rss_bytes), abs(spare_rss - slot.state.spare_rss_bytes))
            if grown > 2**20 and state == slot.state.state:
                self.save()  # memory moved: what `voxstack status` and the dashboard show
            if state != slot.state.state:
                slot.state.state = state
                self.save()
                if healthy:
                    logger.info("%s (pid %d) answers again", slot.name, instance.pid)
                else:
                    logger.warning("%s (pid %d) does not answer its health check", slot.name, instance.pid)

    def _claim_spare(self, slot: Slot) -> tuple[Instance | None, str]:
        """The slot's warm spare if it can serve the code on disk, and how this start goes."""
        spare, slot.spare = slot.spare, None
        if spare is None:
            return None, ReloadPath.COLD
        if not spare.alive or spare.generation != slot.state.generation + 1:
            path = None, ReloadPath.COLD.value
        else:
            # A changed engine or generated stub needs a cold start; other changed code the spare imports again.
            changed = engine_changes(spare.engine_files, Path.cwd()) if spare.engine else ""
            changed = changed or stub_changes(spare.code_files, Path.cwd())
            if not changed:
                return spare, spare_path(spare)
            path = None, f"{ReloadPath.COLD.value}: {changed}"
        self.spawn(asyncio.create_task(spare.stop(0)))
        return path

    def measure(self) -> None:
        """Resident memory of every serving instance and spare, and how far each spare is, into the run record."""
        for slot in self.slots.values():
            slot.measure()

    async def _prepare_spare(self, slot: Slot, instance: Instance) -> None:
        """Start a warm spare for the slot's next start, with the modules ``instance`` said it loaded."""
        await self.spares_may_start.wait()
        if slot.current is not instance or slot.spare is not None or self.stopping.is_set():
            return
        spare = self.launcher.instance(slot, self.settings, preload=instance)
        slot.spare = spare
        await spare.start()
        self.save()
        self.spawn(asyncio.create_task(self._watch_spare(slot, spare)))

    async def _watch_spare(self, slot: Slot, spare: Instance) -> None:
        """Record each step the spare says it took (status and dashboard show it), until its code is imported."""
        while slot.spare is spare and spare.alive and not self.stopping.is_set():
            spare.said.clear()
            with contextlib.suppress(asyncio.TimeoutError):  # a stop or a discard: seen within the second
                await asyncio.wait_for(spare.said.wait(), 1.0)
            if spare.said.is_set() and slot.spare is spare:
                self.save()
                if spare.code_files is not None:
                    return

    async def _start_first(self, slot: Slot) -> None:
        async with slot.lock:
            instance = await self._launch(slot)
        if instance is not None:
            self._adopt(slot, instance)
            logger.info("%s SERVING (pid %d)", slot.name, instance.pid)
        else:
            slot.state.state = ServiceStatus.FAILED
            self.save()
            logger.error("%s failed to start: %s", slot.name, slot.state.last_error)
            self.spawn(asyncio.create_task(self._restart_with_backoff(slot)))

    async def _watch_exit(self, slot: Slot, instance: Instance) -> None:
        started = time.monotonic()
        code = await instance.wait()
        if self.stopping.is_set() or slot.current is not instance:
            return  # stopped on purpose
        if time.monotonic() - started > STABLE_AFTER:
            slot.failures = 0
        slot.current = None
        slot.state.state, slot.state.pid = ServiceStatus.FAILED, 0
        slot.failed(instance.exit_reason(code), instance.trace(), code)
        instance.remove_files()
        logger.error("%s (pid %d) died: %s", slot.name, instance.pid, slot.state.last_error)
        # Recorded with its restart ("backoff"), never as "failed" first: a client that reads the record
        # between the two (the core deciding whether to wait for the service) would give up on it.
        await self._restart_with_backoff(slot)

    def _gives_up(self, slot: Slot) -> bool:
        """In prod, a service stopped by its own settings (EXIT_STARTUP) stops the stack: restarting it
        cannot help. Dev keeps trying, since the next saved file may be the fix."""
        if self.mode != "prod" or slot.exit_code != EXIT_STARTUP:
            return False
        logger.error(
            "%s cannot start: %s. Not restarting it: fix the cause, then start again. Stopping the stack.",
            slot.name,
            slot.state.last_error,
        )
        slot.state.state = ServiceStatus.FAILED
        self.exit_code = EXIT_STARTUP
        self.stopping.set()
        return True

    async def _restart_with_backoff(self, slot: Slot) -> None:
        if self.stopping.is_set() or self._gives_up(slot):
            self.save()  # no restart: what the record shows is the failure
            return
        while not self.stopping.is_set() and slot.current is None:
            delay = min(BACKOFF_CAP, self.settings.restart_backoff * 2**slot.failures)
            slot.failures += 1
            slot.state.state = ServiceStatus.BACKOFF
            slot.state.restarts += 1
            slot.state.backoff_seconds = delay
            self.save()
            logger.warning("restarting %s in %.1f s (attempt %d)", slot.name, delay, slot.failures)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return
            async with slot.lock:
                if slot.current is not None:
                    return  # a reload brought it back meanwhile
                instance = await self._launch(slot)
            if instance is not None:
                self._adopt(slot, instance)
                self.metrics.restarts.labels(slot.name).inc()
                logger.info("%s restarted (pid %d)", slot.name, instance.pid)
                return
            logger.error("%s failed to start: %s", slot.name, slot.state.last_error)
            if self._gives_up(slot):
                self.save()
                return

    # ----- reloads ---------------------------------------------------------

    def use_settings(self, settings: Settings) -> None:
        """Run with ``settings`` from now on (the dev loop loaded them again); clear a settings error."""
        self.settings = settings
        for slot in self.slots.values():
            if slot.settings_error:
                slot.state.last_error, slot.settings_error = "", False
        self.save()

    def report_settings_error(self, names: Iterable[str], message: str) -> None:
        """Show that the settings do not load, on the named services (which keep serving)."""
        for name in names:
            slot = self.slots[name]
            slot.state.last_error, slot.state.error_trace, slot.settings_error = message, "", True
        self.save()

    async def reload(self, names: Iterable[str], reason: str = "", saved_at: float | None = None) -> dict[str, bool]:
        """Replace the named services' instances with new ones; {name: switched}."""
        targets = [self.slots[n] for n in names if n in self.slots]
        results = await asyncio.gather(*(self._reload_one(s, reason, saved_at) for s in targets))
        return {slot.name: ok for slot, ok in zip(targets, results, strict=True)}

    async def _reload_one(self, slot: Slot, reason: str, saved_at: float | None) -> bool:
        async with slot.lock:
            if self.stopping.is_set():
                return False
            old = slot.current
            restart_first = self.strategy == "restart" or debugged(self.debug, slot.name)
            slot.state.state = ServiceStatus.RELOADING
            self.save()
            if restart_first and old is not None:
                slot.current = None  # so its exit is not taken for a crash
                await old.stop(self.settings.grace_period)
                old = None
            instance = await self._launch(slot)
            if instance is None:
                slot.state.state = ServiceStatus.SERVING if old is not None else ServiceStatus.FAILED
                slot.remember(reason, saved_at, ok=False)
                self.save()
                kept = "the old instance keeps serving" if old is not None else "the service is down"
                logger.error("reload of %s failed: %s; %s", slot.name, slot.state.last_error, kept)
                self.metrics.reloads.labels(slot.name, "failed").inc()
                if old is None:
                    self.spawn(asyncio.create_task(self._restart_with_backoff(slot)))
                return False
            slot.current = instance  # from here the old one's exit is not a crash
            if old is not None:
                # Both listen on the public port: until the old one closes its listener, a new client may
                # still reach the old code. Only then is the reload done (and recorded as such).
                self.spawn(asyncio.create_task(old.stop(self.settings.grace_period)))
                if not await old.wait_not_accepting(RETIRE_TIMEOUT):
                    logger.warning("%s (pid %d) still takes connections after its stop signal", slot.name, old.pid)
            slot.failures = 0
            slot.state.last_error = slot.state.error_trace = ""
            slot.settings_error = False
            slot.state.last_reload = time.time()
            took = time.time() - saved_at if saved_at is not None else 0.0
            slot.state.last_reload_seconds = round(took, 3)
            slot.remember(reason, saved_at, ok=True)
            self._adopt(slot, instance)
            self.metrics.reloads.labels(slot.name, "served").inc()
            if saved_at is not None:
                self.metrics.reload_seconds.labels(slot.name).observe(took)
        logger.info(
            "reloaded %s in %.2f s from save to SERVING (generation %d, pid %d, %s)%s",
            slot.name,
            took,
            instance.generation,
            instance.pid,
            slot.state.reload_path,
            f": {reason}" if reason else "",
        )
        return True


def write_line(text: str) -> None:
    """Echo a child's output line on our stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
