"""``voxstack config``: the settings in effect, or their reference (docs/CONFIGURATION.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from voxstack.cli.options import ModeOption, settings_from_flags


def config(
    docs: Annotated[bool, typer.Option("--docs", help="Print the settings reference (Markdown) instead.")] = False,
    hash_key: Annotated[
        str | None, typer.Option("--hash-key", help="Print the api_keys_file line for this key, and exit.")
    ] = None,
    mode: ModeOption = None,
) -> None:
    """Print the settings in effect as JSON (secrets hidden), from defaults, .env, environment and flags."""
    if hash_key is not None:
        from voxstack.core.auth import hashed_line

        typer.echo(hashed_line(hash_key))
        return
    if docs:
        from voxstack.settings_docs import render

        typer.echo(render(), nl=False)
        return
    settings = settings_from_flags(mode=mode)
    typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))
