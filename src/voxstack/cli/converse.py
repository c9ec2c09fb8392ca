"""``voxstack converse``: one spoken turn through the core."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

from voxstack.cli.options import CoreUrlOption, core_url, fail


def converse(
    audio: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A WAV file with the question.")],
    output: Annotated[Path, typer.Option("-o", "--output", dir_okay=False, help="WAV file for the reply.")] = Path(
        "reply.wav"
    ),
    session: Annotated[str | None, typer.Option(help="Session id, to keep history between turns.")] = None,
    url: CoreUrlOption = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before giving up.")] = 120.0,
) -> None:
    """Send one spoken question to the core; print transcript, reply and timings; save the reply audio."""

    base = core_url(url)
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
