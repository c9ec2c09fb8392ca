"""``voxstack converse`` (one spoken turn through the core) and ``voxstack status``."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated

import typer


def _core_url(url: str | None) -> str:
    from voxstack.cli import settings_from_flags

    if url:
        return url.rstrip("/")
    return f"http://{settings_from_flags().core.connect_address}"


def converse(
    audio: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A WAV file with the question.")],
    output: Annotated[Path, typer.Option("-o", "--output", dir_okay=False, help="WAV file for the reply.")] = Path(
        "reply.wav"
    ),
    session: Annotated[str | None, typer.Option(help="Session id, to keep history between turns.")] = None,
    url: Annotated[str | None, typer.Option(help="Core base URL (default: from settings).")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before giving up.")] = 120.0,
) -> None:
    """Send one spoken question to the core; print transcript, reply and timings; save the reply audio."""
    from voxstack.cli import fail

    base = _core_url(url)
    query = f"?session_id={session}" if session else ""
    request = urllib.request.Request(
        f"{base}/v1/converse{query}", data=audio.read_bytes(), headers={"Content-Type": "audio/wav"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as err:
        error = json.loads(err.read() or b"{}").get("error", {})
        raise fail(f"core answered {err.code}: {error.get('message', err.reason)}", 1) from None
    except OSError as exc:
        raise fail(f"core at {base} is unreachable: {exc}", 1) from None
    output.write_bytes(base64.b64decode(body["audio"]["base64"]))
    typer.echo(f"you said:  {body['transcript']}")
    typer.echo(f"reply:     {body['reply']}")
    timings = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in body["timings"].items())
    typer.echo(f"timings:   {timings}")
    typer.echo(f"audio:     {output}")


def status(
    url: Annotated[str | None, typer.Option(help="Core base URL (default: from settings).")] = None,
    timeout: Annotated[float, typer.Option(min=0.1)] = 3.0,
) -> None:
    """Each service's health and address, as the core sees them (or asked directly when the core is down)."""
    from voxstack.cli import settings_from_flags
    from voxstack.health_check import check_health
    from voxstack.runstate import RunState

    record = RunState(settings_from_flags().state_dir).read()
    if record is not None:
        what = "voxstack dev" if record.mode == "dev" else "voxstack up"
        typer.echo(f"{what} running (supervisor pid {record.supervisor_pid})")
        for name, s in record.services.items():
            reload = time.strftime("%H:%M:%S", time.localtime(s.last_reload)) if s.last_reload else "-"
            took = f" ({s.last_reload_seconds:.2f} s)" if s.last_reload else ""
            typer.echo(
                f"  {name:7} {s.state:9} pid {s.pid:<7} generation {s.generation:<3} last reload {reload}{took}"
                f"  restarts {s.restarts}" + (f"  last error: {s.last_error}" if s.last_error else "")
            )
    base = _core_url(url)
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as err:
        body = json.loads(err.read() or b"{}")
    except OSError:
        body = None
    if body is not None:
        typer.echo(f"core      {base}  {body.get('status', '?')} (mode {body.get('mode', '?')})")
        services = body.get("services", {})
    else:
        typer.echo(f"core      {base}  UNREACHABLE")
        settings = settings_from_flags()
        services = {}
        for name in ("asr", "llm", "tts"):
            address = settings.backend_address(name)
            services[name] = {"status": check_health(address, timeout=timeout).status, "address": address}
    for name, info in services.items():
        typer.echo(f"{name:9} {info['address']}  {info['status']}")
    healthy = body is not None and body.get("status") == "ok"
    raise typer.Exit(0 if healthy else 1)
