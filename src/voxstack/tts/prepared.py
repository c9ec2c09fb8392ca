"""The tts's engine (the piper voice), loaded and warmed ahead of time: what a dev warm spare holds for
the next reload."""

from __future__ import annotations

from dataclasses import dataclass

from voxstack.config import Settings
from voxstack.tts.engine import PiperEngine


@dataclass(frozen=True)
class PreparedTts:
    engine: PiperEngine
    settings_json: str  # the tts section it was built with: another one means a cold start


def prepare(settings: Settings) -> PreparedTts:
    engine = PiperEngine(settings.tts, settings.models_dir)
    engine.load()
    engine.warm_up()
    return PreparedTts(engine, settings.tts.model_dump_json())
