"""``voxstack wyoming``: Home Assistant's Wyoming protocol in front of a running stack's asr and tts."""

from __future__ import annotations

from typing import Annotated

import typer

from voxstack.cli.options import LogFormatOption, LogLevelOption, ModeOption, fail, settings_from_flags


def wyoming(
    asr: Annotated[
        str | None,
        typer.Option(help="Speech-to-text server: tcp://HOST:PORT, unix://PATH, stdio:// or '' for off."),
    ] = None,
    tts: Annotated[str | None, typer.Option(help="Text-to-speech server, as --asr.")] = None,
    mode: ModeOption = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Serve Wyoming speech to text (port 10300) and text to speech (10200) until SIGTERM or Ctrl-C.

    Point Home Assistant's Wyoming integration at this host and those ports.
    The asr and tts services must be running (`voxstack up`).
    """
    from voxstack.core.wyoming.server import run
    from voxstack.logs import configure_logging
    from voxstack.tracing import configure_tracing

    section = {k: v for k, v in (("asr_uri", asr), ("tts_uri", tts)) if v is not None}
    settings = settings_from_flags(mode=mode, log_level=log_level, log_format=log_format, wyoming=section or None)
    configure_logging(settings, "wyoming")
    configure_tracing("wyoming", settings.mode.value)
    try:
        code = run(settings)
    except (ValueError, OSError) as exc:
        raise fail(f"wyoming: {exc}", 1) from None
    raise typer.Exit(code)
