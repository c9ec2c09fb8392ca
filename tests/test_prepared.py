"""What a warm spare's loaded llm engine survives: a change to what the engine reads at each call (the system
prompt, sampling) keeps it, now reading the new settings; a change to what it was loaded from does not."""

from __future__ import annotations

from pathlib import Path

from voxstack.config import load_settings
from voxstack.llm.llama_engine import LlamaCppEngine
from voxstack.llm.prepared import PreparedLlm, loaded_from


def test_a_prompt_change_keeps_the_loaded_engine_and_a_load_setting_does_not(tmp_path: Path) -> None:
    llm = load_settings().llm
    engine = LlamaCppEngine(llm, tmp_path)  # not loaded: what matters is which object serves
    prepared = PreparedLlm(engine, loaded_from(llm))
    prompt = llm.model_copy(update={"system_prompt": "Answer in one word.", "temperature": 0.2})
    assert prepared.serves(prompt) is engine
    assert engine.settings.system_prompt == "Answer in one word." and engine.settings.temperature == 0.2
    for change in ({"context_size": 4096}, {"parallel": 1 if llm.parallel != 1 else 2}, {"preset": "tiny"}):
        assert prepared.serves(llm.model_copy(update=change)) is None, change
