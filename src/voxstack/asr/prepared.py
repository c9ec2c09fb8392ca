"""The asr's engine, loaded and warmed ahead of time: what a dev warm spare holds for the next reload.

Only this module and what it imports (the engine, the VAD) are the "engine":
a reload that changes none of their files keeps it (see supervisor/spare.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxstack.asr.engine import WhisperEngine
from voxstack.asr.turn import TurnModel
from voxstack.asr.vad import load_silero_session
from voxstack.config import Settings


@dataclass(frozen=True)
class PreparedAsr:
    engine: WhisperEngine
    vad_session: Any  # an onnxruntime session
    turn: TurnModel | None
    settings_json: str  # the asr section it was built with: another one means a cold start


def prepare(settings: Settings) -> PreparedAsr:
    engine = WhisperEngine(settings.asr, settings.models_dir)
    engine.load()
    vad_session = load_silero_session()
    turn = TurnModel.for_settings(settings.asr, settings.models_dir)
    engine.warm_up()
    return PreparedAsr(engine, vad_session, turn, settings.asr.model_dump_json())
