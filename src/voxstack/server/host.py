"""The shared gRPC service base: one process, one service, from start to exit.

A service (asr, llm, tts, or a test one) provides a ``Service``: it registers
its servicers and loads its engine. ``ServiceHost`` does everything else: the
grpc.aio server, health (NOT_SERVING until the engine is loaded), reflection,
the per-call interceptor, message-size limits, and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from voxstack import provenance
from voxstack.config import GrpcServiceSettings, Settings
from voxstack.errors import StartupError
from voxstack.metrics.catalog import ServiceMetrics
from voxstack.metrics.serve import MetricsServer
from voxstack.runtime import report_loaded_modules
from voxstack.server.interceptor import CallInterceptor
from voxstack.tls import server_credentials
from voxstack.tracing import server_interceptors

logger = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@runtime_checkable
class Service(Protocol):
    """What a service gives the host. It knows nothing of signals or health."""

    #: Short name used in logs and settings: "asr", "llm", "tts", ...
    name: str
    #: Full gRPC service names, e.g. ("voxstack.v1.Asr",), for health and reflection.
    grpc_names: Sequence[str]

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicers to ``server``."""

    async def start(self) -> None:
        """Load the engine and warm it up; return when calls can be served."""

    async def close(self) -> None:
        """Release the engine after the server has stopped."""

    # Optional: ``def drain(self) -> None``, called when the stop begins, for a
    # service whose long-lived calls can end early at a clean point (asr streams).


class BindError(RuntimeError):
    """The listening address could not be bound."""


def _tls_note(tls: bool, client_auth: bool) -> str:
    if not tls:
        return ""
    return " with TLS (client certificates required)" if client_auth else " with TLS"


def connection_age_options(seconds: float) -> list[tuple[str, int]]:
    """Server options that send clients a GOAWAY after ``seconds`` (±10 %, gRPC's jitter); none for 0.

    No grace limit: a long call (an asr stream, a reply) finishes on its connection.
    """
    return [("grpc.max_connection_age_ms", int(seconds * 1000))] if seconds > 0 else []


class ServiceHost:
    """Runs one Service on a grpc.aio server; see the module docstring."""

    def __init__(
        self,
        service: Service,
        settings: Settings,
        section: GrpcServiceSettings,
        control_socket: str | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.section = section
        # A private unix socket on which a supervisor reaches this very instance,
        # while another instance shares the public port.
        self.control_socket = control_socket
        self.port = 0
        self.health = health.aio.HealthServicer()
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._load_task: asyncio.Task[None] | None = None
        self.load_error: BaseException | None = None
        metrics = getattr(service, "metrics", None)
        self.metrics: ServiceMetrics = metrics if isinstance(metrics, ServiceMetrics) else ServiceMetrics()
        self.metrics_server: MetricsServer | None = None
        self.interceptor = CallInterceptor(
            service.name, is_ready=self._ready.is_set, error_detail=settings.error_detail, metrics=self.metrics
        )
        self.server = grpc.aio.server(
            interceptors=[
                *server_interceptors(),  # first: the caller's trace is current in ours
                self.interceptor,
            ],
            options=[
                ("grpc.max_receive_message_length", section.max_message_bytes),
                ("grpc.max_send_message_length", section.max_message_bytes),
                ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
                *connection_age_options(section.max_connection_age),
            ],
        )

    @property
    def address(self) -> str:
        return f"{self.section.host}:{self.port}"

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def start(self) -> int:
        """Bind, start serving (health NOT_SERVING), begin loading the engine; return the port."""
        self.service.register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if self.settings.reflection:
            names = (*self.service.grpc_names, health.SERVICE_NAME, reflection.SERVICE_NAME)
            reflection.enable_server_reflection(names, self.server)
        for name in ("", *self.service.grpc_names):
            await self.health.set(name, NOT_SERVING)
        wanted = self.section.address
        credentials = server_credentials(self.settings.tls)
        try:
            if credentials is None:
                self.port = self.server.add_insecure_port(wanted)
            else:
                self.port = self.server.add_secure_port(wanted, credentials)
        except RuntimeError as exc:  # grpc raises on bind failure
            raise BindError(f"cannot listen on {wanted}: {exc} (is the port in use?)") from exc
        if self.port == 0:  # older grpc: 0 instead of an exception
            raise BindError(f"cannot listen on {wanted} (is the port in use?)")
        # Replicas differ by host name (containers, pods) or by address (processes on one host).
        self.interceptor.replica = f"{socket.gethostname()}/{self.address}"
        self.interceptor.served_by = provenance.as_metadata(provenance.this_instance())
        if self.control_socket:
            self.server.add_insecure_port(f"unix:{self.control_socket}")
        if self.section.metrics_port:
            try:
                self.metrics_server = MetricsServer(
                    self.metrics.registry,
                    self.section.host,
                    self.section.metrics_port,
                    reuse_port=self.settings.reuse_port,
                ).start()
            except OSError as exc:
                raise BindError(f"cannot serve metrics on port {self.section.metrics_port}: {exc}") from exc
        await self.server.start()
        logger.info(
            "%s listening on %s%s (mode %s), loading engine",
            self.service.name,
            self.address,
            _tls_note(credentials is not None, self.settings.tls.client_auth),
            self.settings.mode.value,
        )
        self._load_task = asyncio.create_task(self._load(), name=f"{self.service.name}-load")
        return self.port

    async def _load(self) -> None:
        started = asyncio.get_running_loop().time()
        try:
            await self.service.start()
        except StartupError as exc:
            self.load_error = exc
            logger.error("%s cannot start: %s", self.service.name, exc)
            self._stopping.set()
            return
        except Exception as exc:
            self.load_error = exc
            logger.exception("%s failed to start its engine", self.service.name)
            self._stopping.set()
            return
        if self._stopping.is_set():
            return
        for name in ("", *self.service.grpc_names):
            await self.health.set(name, SERVING)
        self._ready.set()
        report_loaded_modules()
        elapsed = asyncio.get_running_loop().time() - started
        logger.info("%s SERVING on %s (engine ready in %.2f s)", self.service.name, self.address, elapsed)

    async def wait_ready(self) -> None:
        """Return when SERVING; raise the engine's error if it failed to load."""
        assert self._load_task is not None, "start() first"
        await asyncio.shield(self._load_task)
        if self.load_error is not None:
            raise self.load_error

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: NOT_SERVING, refuse new calls, let in-flight ones finish within grace."""
        grace = self.settings.grace_period if grace is None else grace
        self._stopping.set()
        logger.info("%s shutting down (grace %.1f s)", self.service.name, grace)
        await self.health.enter_graceful_shutdown()
        drain = getattr(self.service, "drain", None)
        if drain is not None:
            drain()
        await self.server.stop(grace)
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._load_task
        await self.service.close()
        if self.metrics_server is not None:
            await asyncio.to_thread(self.metrics_server.stop)
        logger.info("%s stopped", self.service.name)

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT or an engine failure; return the exit code.

        First signal: graceful stop, exit 0. Second signal: exit at once.
        """
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        received: list[int] = []

        def on_signal(signum: int) -> None:
            received.append(signum)
            if len(received) == 1:
                logger.info("received %s: stopping gracefully", signal.Signals(signum).name)
                self._stopping.set()
                return
            logger.warning("received %s again: forcing exit", signal.Signals(signum).name)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(128 + signum)

        for signum in signals:
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            await self.start()
            await self._stopping.wait()
            await self.stop()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
        if isinstance(self.load_error, StartupError):
            return self.load_error.exit_code
        return 1 if self.load_error is not None else 0
