"""``voxstack models``: fetch and check the default models."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from voxstack.cli.options import settings_from_flags
from voxstack.models import DEFAULT_MODELS, ModelError, problems, pull

app = typer.Typer(help="Fetch and check the default models (cached under models_dir).", no_args_is_help=True)

_CHOICES = (*DEFAULT_MODELS, "all")


def _selected(which: str) -> list[str]:
    if which not in _CHOICES:
        raise typer.BadParameter(f"{which!r}: choose from {', '.join(_CHOICES)}")
    return list(DEFAULT_MODELS) if which == "all" else [which]


@app.command("pull")
def pull_command(
    which: Annotated[str, typer.Argument(help="asr, llm, tts or all.")] = "all",
) -> None:
    """Download, assemble and verify the default model(s); does nothing for those already intact."""

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models_dir = settings_from_flags().models_dir
    failed = False
    for name in _selected(which):
        spec = DEFAULT_MODELS[name]
        try:
            fetched = pull(spec, models_dir)
        except ModelError as exc:
            typer.echo(f"{name}: {exc}", err=True)
            failed = True
            continue
        state = "fetched and verified" if fetched else "already present and verified, nothing to do"
        typer.echo(f"{name}: {spec.description}: {state} ({spec.path(models_dir)})")
    raise typer.Exit(1 if failed else 0)


@app.command("list")
def list_command() -> None:
    """Show each default model, where it lives and whether it is intact."""

    models_dir = settings_from_flags().models_dir
    for name, spec in DEFAULT_MODELS.items():
        found = problems(spec, models_dir)
        state = "ok" if not found else "; ".join(found)
        typer.echo(f"{name:4} {spec.description}: {spec.path(models_dir)}: {state}")


@app.command("packages")
def packages_command(
    which: Annotated[str, typer.Argument(help="asr, llm, tts or all.")] = "all",
) -> None:
    """Print the pinned packages that carry the default model(s), one per line (for wheelhouses)."""
    for name in _selected(which):
        for package in DEFAULT_MODELS[name].packages:
            typer.echo(package)
