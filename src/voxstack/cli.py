"""The ``voxstack`` command.

Each subcommand is a plain function registered on ``app``; a new one is a
decorated function here or ``app.command()(fn)`` from the module that owns it.
Heavy imports (engines, grpc servers) happen inside the commands so that
``voxstack --help`` stays fast and one service's command never loads another's
dependencies.
"""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer

from voxstack.config import LogFormat, Mode, Settings, SettingsError, load_settings

app = typer.Typer(
    name="voxstack",
    help="voxstack: a voice-assistant backend (asr, llm, tts gRPC services and a core HTTP app).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ModeOption = Annotated[
    Mode | None,
    typer.Option("--mode", case_sensitive=False, help="dev or prod (default: VOXSTACK_MODE, prod)."),
]
LogLevelOption = Annotated[
    str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR (default: by mode).")
]
LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option("--log-format", case_sensitive=False, help="json or console (default: by mode)."),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` to stderr and return the Exit to raise."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def settings_from_flags(**overrides: Any) -> Settings:
    """Settings with CLI flags on top; a bad value ends the command with one line per problem."""
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise fail(str(exc)) from None


def package_version() -> str:
    try:
        return version("voxstack")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="A service (asr, llm, tts) or an import string module:factory.")],
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: from settings).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free one.")] = None,
    mode: ModeOption = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run one service in the foreground until SIGTERM or Ctrl-C."""
    from voxstack.logs import configure_logging
    from voxstack.server.run import FactoryError, run_service

    settings = settings_from_flags(mode=mode, log_level=log_level, log_format=log_format)
    configure_logging(settings, service.rpartition(":")[0].rpartition(".")[2] or service)
    try:
        code = run_service(service, settings, host=host, port=port)
    except FactoryError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def health(
    service: Annotated[
        str | None,
        typer.Argument(help="A service (asr, llm, tts) or a full gRPC service name; omit for the whole server."),
    ] = None,
    addr: Annotated[str | None, typer.Option(help="HOST:PORT to ask (default: the service's address).")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for an answer.")] = 3.0,
) -> None:
    """Exit 0 when the service answers SERVING, 1 otherwise (container health checks call this)."""
    from voxstack.health_check import check_health, check_http_health
    from voxstack.services import SERVICES

    spec = SERVICES.get(service or "")
    if spec is not None and spec.kind == "http":
        result = check_http_health(addr or settings_from_flags().core.connect_address, timeout)
        typer.echo(result.describe(), err=not result.serving)
        raise typer.Exit(0 if result.serving else 1)
    if spec is not None:
        address = addr or settings_from_flags().backend_address(spec.name)
        grpc_name = spec.grpc_name
    elif addr is not None:
        address, grpc_name = addr, service or ""
    else:
        known = ", ".join(SERVICES) or "none yet"
        what = f"unknown service {service!r}" if service else "no service given"
        raise fail(f"{what}: name one of ({known}) or give --addr HOST:PORT")
    result = check_health(address, grpc_name, timeout)
    typer.echo(result.describe(), err=not result.serving)
    raise typer.Exit(0 if result.serving else 1)


@app.command("version")
def show_version() -> None:
    """Print the versions of voxstack, Python and grpc."""
    import grpc

    typer.echo(f"voxstack {package_version()} (Python {platform.python_version()}, grpcio {grpc.__version__})")


def _register_feature_commands() -> None:
    from voxstack.commands import chat, converse, models, speak, stack, transcribe

    app.add_typer(models.app, name="models")
    app.command()(transcribe.transcribe)
    app.command()(speak.speak)
    app.command()(chat.chat)
    app.command()(converse.converse)
    app.command()(converse.status)
    for command in (stack.dev, stack.up, stack.down, stack.logs):
        app.command()(command)


_register_feature_commands()


def main() -> None:
    app(prog_name="voxstack")


if __name__ == "__main__":
    sys.exit(main())
