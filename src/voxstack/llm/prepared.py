"""The llm's engine, loaded and warmed ahead of time: what a dev warm spare holds for the next reload
(llama.cpp only: an OpenAI-compatible upstream loads nothing)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from voxstack.config import Settings
from voxstack.llm.llama_engine import LlamaCppEngine


@dataclass(frozen=True)
class PreparedLlm:
    engine: LlamaCppEngine
    settings_json: str  # the llm section it was built with: another one means a cold start


def prepare(settings: Settings) -> PreparedLlm | None:
    if settings.llm.engine != "llama_cpp":
        return None
    engine = LlamaCppEngine(settings.llm, settings.models_dir)
    asyncio.run(engine.load())  # its threads outlive this loop; its per-call state is made per call
    return PreparedLlm(engine, settings.llm.model_dump_json())
