"""llm presets: one setting picks the model, prompt and sampling; the default preset's model answers end to end."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import grpc
import httpx
import pytest

from voxstack.config import load_settings
from voxstack.models import DEFAULT_PRESET, LLM_PRESETS, PresetName, pull
from voxstack.testing.processes import ServiceProcess, free_port, served
from voxstack.v1 import llm_pb2, llm_pb2_grpc


def test_the_preset_names_are_the_catalogues() -> None:
    assert set(get_args(PresetName)) == set(LLM_PRESETS) and DEFAULT_PRESET in LLM_PRESETS


def test_a_preset_gives_its_settings_and_explicit_ones_win(clean_env: Path) -> None:
    small = load_settings(llm={"preset": "small"}).llm
    assert small.llm_preset.model.folder == "qwen2.5-coder-0.5b-instruct"
    assert small.system_prompt == LLM_PRESETS["small"].system_prompt
    mine = load_settings(llm={"preset": "tiny", "system_prompt": "Be brief.", "temperature": 0.4}).llm
    assert (mine.system_prompt, mine.temperature) == ("Be brief.", 0.4)
    assert mine.top_p == LLM_PRESETS["tiny"].top_p
    assert load_settings().llm.preset == DEFAULT_PRESET


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_the_models_list_names_the_presets_model(preset: str, tmp_path: Path) -> None:
    env = {f"VOXSTACK_CORE__{n.upper()}_ADDRESS": f"127.0.0.1:{free_port()}" for n in ("asr", "llm", "tts")}
    env["VOXSTACK_LLM__PRESET"] = preset
    core = ServiceProcess("core", mode="prod", env=env, log=tmp_path / "core.log").start().wait_live()
    try:
        ids = {m["id"] for m in httpx.get(f"http://127.0.0.1:{core.port}/v1/models", timeout=10).json()["data"]}
    finally:
        core.stop()
    assert Path(LLM_PRESETS[preset].gguf).stem in ids
    others = {Path(p.gguf).stem for name, p in LLM_PRESETS.items() if name != preset}
    assert not ids & others


@pytest.mark.models
def test_the_default_presets_model_answers_through_the_llm_service(models_dir: Path, tmp_path: Path) -> None:
    """The suite's other tests run the tiny preset; this one runs the default's model end to end once."""
    pull(LLM_PRESETS[DEFAULT_PRESET].model, models_dir)
    env = {"VOXSTACK_MODELS_DIR": str(models_dir), "VOXSTACK_LLM__PARALLEL": "1"}  # the default preset
    with served("llm", env=env, log=tmp_path / "llm.log") as process, grpc.insecure_channel(process.address) as ch:
        question = llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content="What is the capital of France?")
        replies = llm_pb2_grpc.LlmStub(ch).Generate(llm_pb2.GenerateRequest(messages=[question]), timeout=60)
        text = "".join(r.delta for r in replies if r.WhichOneof("event") == "delta")
    assert "paris" in text.lower(), text
