"""``voxstack models``: fetch and check the models the services load."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from voxstack.cli.options import settings_from_flags
from voxstack.models import LLM_PRESETS, ModelError, ModelSpec, problems, pull, service_models
from voxstack.registry import MODEL_SERVICES

app = typer.Typer(help="Fetch and check the models the services load (cached under models_dir).", no_args_is_help=True)

_CHOICES = (*MODEL_SERVICES, "all")
_PRESET_HELP = "The llm preset whose model to use (tiny, small, quality); unset = the llm.preset setting."


def _selected(which: str, preset: str | None) -> list[tuple[str, ModelSpec]]:
    if which not in _CHOICES:
        raise typer.BadParameter(f"{which!r}: choose from {', '.join(_CHOICES)}")
    if preset is not None and preset not in LLM_PRESETS:
        raise typer.BadParameter(f"--preset {preset!r}: choose from {', '.join(LLM_PRESETS)}")
    chosen = preset or settings_from_flags().llm.preset
    services = MODEL_SERVICES if which == "all" else (which,)
    return [(service, spec) for service in services for spec in service_models(service, chosen)]


@app.command("pull")
def pull_command(
    which: Annotated[str, typer.Argument(help="asr, llm, tts or all.")] = "all",
    preset: Annotated[str | None, typer.Option(help=_PRESET_HELP)] = None,
) -> None:
    """Download, assemble and verify the model(s); does nothing for those already intact."""

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models_dir = settings_from_flags().models_dir
    failed = False
    for service, spec in _selected(which, preset):
        try:
            fetched = pull(spec, models_dir)
        except ModelError as exc:
            typer.echo(f"{service}: {spec.description}: {exc}", err=True)
            failed = True
            continue
        state = "fetched and verified" if fetched else "already present and verified, nothing to do"
        typer.echo(f"{service}: {spec.description}: {state} ({spec.path(models_dir)})")
    raise typer.Exit(1 if failed else 0)


@app.command("list")
def list_command(
    preset: Annotated[str | None, typer.Option(help=_PRESET_HELP)] = None,
) -> None:
    """Show each model the services load, where it lives and whether it is intact."""

    models_dir = settings_from_flags().models_dir
    for service, spec in _selected("all", preset):
        found = problems(spec, models_dir)
        state = "ok" if not found else "; ".join(found)
        typer.echo(f"{service:4} {spec.description}: {spec.path(models_dir)}: {state}")


@app.command("packages")
def packages_command(
    which: Annotated[str, typer.Argument(help="asr, llm, tts or all.")] = "all",
    preset: Annotated[str | None, typer.Option(help=_PRESET_HELP)] = None,
) -> None:
    """Print the pinned packages that carry the model(s), one per line (for wheelhouses)."""
    for _, spec in _selected(which, preset):
        for package in spec.packages:
            typer.echo(package)
