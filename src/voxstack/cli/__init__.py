"""The ``voxstack`` command: the top layer, imported by nothing in the package.

Each command group lives in its own module and imports only ``cli.options``
from here; heavy imports (engines, grpc servers, the supervisor) happen inside
the commands, so ``voxstack --help`` stays fast and one command never loads
another's dependencies. Services are not started through this package: a
supervisor runs ``python -m voxstack.server SERVICE``.
"""

from __future__ import annotations

import typer

from voxstack.cli import chat, config, converse, models, replay, service, speak, stack, transcribe, wyoming

app = typer.Typer(
    name="voxstack",
    help="voxstack: a voice-assistant backend (asr, llm, tts gRPC services and a core HTTP app).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(service.serve)
app.command()(service.health)
app.command("version")(service.show_version)
app.command()(config.config)
app.add_typer(models.app, name="models")
app.command()(transcribe.transcribe)
app.command()(speak.speak)
app.command()(chat.chat)
app.command()(converse.converse)
app.command()(replay.replay)
app.command()(wyoming.wyoming)
for command in (stack.dev, stack.up, stack.down, stack.logs, stack.status):
    app.command()(command)


def main() -> None:
    app(prog_name="voxstack")
