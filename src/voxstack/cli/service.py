"""``voxstack serve``, ``health`` and ``version``: one service, its health, the versions."""

from __future__ import annotations

import platform
from typing import Annotated

import typer

from voxstack import package_version
from voxstack.cli.options import LogFormatOption, LogLevelOption, ModeOption, fail, settings_from_flags


def serve(
    service: Annotated[str, typer.Argument(help="A service (asr, llm, tts, core) or an import string module:factory.")],
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: from settings).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free one.")] = None,
    mode: ModeOption = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run one service in the foreground until SIGTERM or Ctrl-C."""
    from voxstack.server.run import FactoryError
    from voxstack.server.run import serve as serve_service

    settings = settings_from_flags(mode=mode, log_level=log_level, log_format=log_format)
    try:
        code = serve_service(service, settings, host=host, port=port)
    except FactoryError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


def health(
    service: Annotated[
        str | None,
        typer.Argument(help="A service (asr, llm, tts, core) or a full gRPC service name; omit for the whole server."),
    ] = None,
    addr: Annotated[str | None, typer.Option(help="HOST:PORT to ask (default: the service's address).")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for an answer.")] = 3.0,
) -> None:
    """Exit 0 when the service answers SERVING, 1 otherwise (container health checks call this)."""
    from voxstack.health import check_health, check_http_health
    from voxstack.registry import SERVICES

    spec = SERVICES.get(service or "")
    if spec is not None and spec.kind == "http":
        result = check_http_health(addr or settings_from_flags().core.base_url, timeout)
        typer.echo(result.describe(), err=not result.serving)
        raise typer.Exit(0 if result.serving else 1)
    if spec is not None:
        address = addr or settings_from_flags().backend_address(spec.name)
        grpc_name = spec.grpc_name
    elif addr is not None:
        address, grpc_name = addr, service or ""
    else:
        what = f"unknown service {service!r}" if service else "no service given"
        raise fail(f"{what}: name one of ({', '.join(SERVICES)}) or give --addr HOST:PORT")
    result = check_health(address, grpc_name, timeout, tls=settings_from_flags().tls)
    typer.echo(result.describe(), err=not result.serving)
    raise typer.Exit(0 if result.serving else 1)


def show_version() -> None:
    """Print the versions of voxstack, Python and grpc."""
    import grpc

    typer.echo(f"voxstack {package_version()} (Python {platform.python_version()}, grpcio {grpc.__version__})")
