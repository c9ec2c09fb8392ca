"""What every command shares: option types, settings from flags, and how a command fails."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from voxstack.config import LogFormat, Mode, Settings, SettingsError, load_settings

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
CoreUrlOption = Annotated[str | None, typer.Option("--url", help="Core base URL (default: from settings).")]


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


def core_url(url: str | None) -> str:
    """The core's base URL: the one given, else where the settings say the core listens."""
    if url:
        return url.rstrip("/")
    return settings_from_flags().core.base_url
