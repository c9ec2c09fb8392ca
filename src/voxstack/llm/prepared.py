"""The llm's engine, loaded and warmed ahead of time: what a dev warm spare holds for the next reload
(llama.cpp only: an OpenAI-compatible upstream loads nothing)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from voxstack.config import LlmSettings, Settings
from voxstack.llm.llama_engine import LlamaCppEngine

#: The llm settings a loaded llama.cpp engine is built from. The others (the system prompt, sampling,
#: limits) it reads at each call, so a change to them keeps the loaded engine (a saved prompt reloads fast).
LOADED_FROM = ("engine", "model", "preset", "context_size", "threads", "gpu_layers", "parallel")


def loaded_from(llm: LlmSettings) -> str:
    return llm.model_dump_json(include=set(LOADED_FROM))


@dataclass(frozen=True)
class PreparedLlm:
    engine: LlamaCppEngine
    loaded_from: str  # loaded_from() of the settings it was built with: another one means a cold start

    def serves(self, llm: LlmSettings) -> LlamaCppEngine | None:
        """The engine, now reading ``llm``, if it was built from the same LOADED_FROM; else None."""
        if self.loaded_from != loaded_from(llm):
            return None
        self.engine.settings = llm
        return self.engine


def prepare(settings: Settings) -> PreparedLlm | None:
    if settings.llm.engine != "llama_cpp":
        return None
    engine = LlamaCppEngine(settings.llm, settings.models_dir)
    asyncio.run(engine.load())  # its threads outlive this loop; its per-call state is made per call
    return PreparedLlm(engine, loaded_from(settings.llm))
