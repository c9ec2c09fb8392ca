"""Run one service in this process: what ``voxstack serve`` and ``python -m voxstack.server`` call."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import Callable
from typing import cast

from voxstack.config import GrpcServiceSettings, Settings
from voxstack.errors import StartupError
from voxstack.registry import CONTROL_SOCKET_ENV, SERVICES
from voxstack.server.host import BindError, Service, ServiceHost

logger = logging.getLogger(__name__)

ServiceFactory = Callable[..., Service]  # (settings) or (settings, prepared engine)
HttpFactory = Callable[[Settings, "str | None", "int | None"], int]


class FactoryError(ValueError):
    """A service name or factory reference that cannot be loaded."""


def load_factory(ref: str) -> Callable[..., object]:
    """A registered service name (``asr``) or an import string (``pkg.module:create``)."""
    spec = SERVICES.get(ref)
    target = spec.factory if spec else ref
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        known = ", ".join(SERVICES) or "none yet"
        raise FactoryError(f"unknown service {ref!r}: give one of ({known}) or an import string module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FactoryError(f"cannot import {module_name!r} for service {ref!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise FactoryError(f"{target!r} is not a callable service factory")
    return cast(Callable[..., object], factory)


def service_section(settings: Settings, name: str, host: str | None, port: int | None) -> GrpcServiceSettings:
    """The service's settings section (a default one for services without their own), with overrides."""
    try:
        section = settings.service(name)
    except KeyError:
        section = GrpcServiceSettings()
    if not isinstance(section, GrpcServiceSettings):
        raise FactoryError(f"{name!r} is not a gRPC service")
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    return type(section).model_validate({**section.model_dump(), **updates}) if updates else section


def lower_priority(nice: int) -> None:
    """Run this thread at niceness ``nice`` at least (Linux: threads created after this inherit it).

    Idempotent: a warm spare has set it already before it loaded its engine's threads.
    """
    if nice <= 0:
        return
    try:
        current = os.nice(0)
        if current < nice:
            os.nice(nice - current)  # raising niceness needs no privilege
    except OSError as exc:
        logger.warning("cannot set CPU niceness %d: %s", nice, exc)


def run_service(
    ref: str, settings: Settings, *, host: str | None = None, port: int | None = None, prepared: object = None
) -> int:
    """Serve until signalled; return the process exit code. ``prepared``: an engine a warm spare loaded.

    A registered gRPC service whose ``factory`` setting is set is served by that factory instead.
    """
    spec = SERVICES.get(ref)
    if spec is not None and spec.kind == "grpc":
        section = settings.service(spec.name)
        if isinstance(section, GrpcServiceSettings) and section.factory:
            ref, prepared = section.factory, None
    if spec is not None:
        # Before the service's modules load: an import may start threads (numpy's BLAS pool), and a thread
        # keeps the niceness it was started with.
        lower_priority(settings.service(spec.name).nice)
    if spec is not None and spec.kind == "http":
        http_factory = cast(HttpFactory, load_factory(ref))
        try:
            return http_factory(settings, host, port)
        except BindError as exc:
            logger.error("%s cannot start: %s", spec.name, exc)
            return 1
        except StartupError as exc:
            logger.error("%s cannot start: %s", spec.name, exc)
            return exc.exit_code
    factory = cast(ServiceFactory, load_factory(ref))

    async def main() -> int:
        service = factory(settings, prepared) if prepared is not None else factory(settings)
        section = service_section(settings, service.name, host, port)
        lower_priority(section.nice)  # before any worker thread starts, so they all inherit it
        control = os.environ.get(CONTROL_SOCKET_ENV) or None
        return await ServiceHost(service, settings, section, control_socket=control).run()

    try:
        return asyncio.run(main())
    except BindError as exc:
        logger.error("%s", exc)
        return 1
    except StartupError as exc:  # raised by the factory itself (a setting it cannot work with)
        logger.error("%s cannot start: %s", log_name(ref), exc)
        return exc.exit_code


def log_name(ref: str) -> str:
    """The name a service's log lines carry: ``asr`` for ``asr`` and for ``pkg.asr_module:create``."""
    return ref.rpartition(":")[0].rpartition(".")[2] or ref


def serve(
    ref: str, settings: Settings, *, host: str | None = None, port: int | None = None, prepared: object = None
) -> int:
    """Configure logging for the service, then serve it until signalled; FactoryError if it cannot load."""
    from voxstack.logs import configure_logging
    from voxstack.tracing import configure_tracing

    spec = SERVICES.get(ref)
    for name, value in spec.env if spec is not None else ():
        os.environ.setdefault(name, value)  # before the engine's libraries load and read it

    configure_logging(settings, log_name(ref))
    try:
        configure_tracing(log_name(ref), settings.mode.value)
    except StartupError as exc:
        logger.error("%s cannot start: %s", log_name(ref), exc)
        return exc.exit_code
    return run_service(ref, settings, host=host, port=port, prepared=prepared)
