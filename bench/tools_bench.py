"""tools: how often each llm preset calls the right function with the right arguments, and how often it calls
one when none fits.

bench/data/tool_requests.json (written before any tuning) holds 32 clear
requests that one of four offered tools answers (get_weather, set_timer,
play_music, send_message) and 30 that none answers (plain questions, chit-
chat). Each is asked alone, with all four tools offered, tool choice auto,
in-process through the llama.cpp engine with the preset's own system prompt
and sampling (temperature 0), each model in a child process of its own, under
each candidate of the instructions added to the system message when tools are
offered (``llm.tool_instructions``). A call is right when its function is the
expected one and its arguments equal the expected ones (strings compared
without case or surrounding punctuation).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

from bench.common import Inputs, Report, median
from voxstack.config import load_settings
from voxstack.llm.engine import ChatRequest, Finished, Sampling
from voxstack.llm.llama_engine import LlamaCppEngine
from voxstack.models import LLM_PRESETS, pull
from voxstack.models.catalog import TOOL_INSTRUCTIONS
from voxstack.toolcalls import check_tools

REQUESTS = Path(__file__).resolve().parent / "data" / "tool_requests.json"
MAX_TOKENS = 96
# Candidates for llm.tool_instructions and llm.tool_call_grounding: "direct" with grounding is what ships.
# Four other wordings did worse with the default preset on 2026-12-06 (docs/PERFORMANCE.md) and are not
# run again.
CANDIDATES = {
    "none": ("", True),
    "direct": (TOOL_INSTRUCTIONS, True),
    "direct, calls not checked for grounding": (TOOL_INSTRUCTIONS, False),
}


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, str) and isinstance(got, str):
        return expected.strip(" .!").lower() == got.strip(" .!").lower()
    return bool(expected == got)


def right(case: dict[str, Any], calls: list[tuple[str, dict[str, Any]]]) -> bool:
    """One call of the expected function with the expected arguments (nothing more, nothing less)."""
    if len(calls) != 1 or calls[0][0] != case["name"]:
        return False
    args = calls[0][1]
    return set(args) == set(case["arguments"]) and all(_same(v, args[k]) for k, v in case["arguments"].items())


async def _asks(preset: str, models_dir: Path, instructions: str, grounding: bool) -> dict[str, Any]:
    data = json.loads(REQUESTS.read_text())
    llm = {"preset": preset, "parallel": 1, "tool_instructions": instructions, "tool_call_grounding": grounding}
    settings = load_settings(models_dir=str(models_dir), llm=llm)
    engine = LlamaCppEngine(settings.llm, models_dir)
    await engine.load()
    tools, choice = check_tools([(t["name"], t["description"], json.dumps(t["parameters"])) for t in data["tools"]], "")
    system = {"role": "system", "content": settings.llm.system_prompt}

    async def ask(text: str) -> tuple[list[tuple[str, dict[str, Any]]], float]:
        conversation = ChatRequest([system, {"role": "user", "content": text}], Sampling(0.0, 1.0, MAX_TOKENS),
                                    tools, choice)  # fmt: skip
        started, calls = time.perf_counter(), []
        async for event in engine.stream(conversation):
            if isinstance(event, Finished):
                calls = [(c.name, json.loads(c.arguments)) for c in event.tool_calls]
        return calls, time.perf_counter() - started

    out: dict[str, Any] = {"wrong": [], "called": [], "seconds": []}
    try:
        hits = 0
        for case in data["calls"]:
            calls, seconds = await ask(case["ask"])
            out["seconds"].append(seconds)
            if right(case, calls):
                hits += 1
            else:
                out["wrong"].append(f"{case['ask']} -> {calls}")
        out["right"] = hits / len(data["calls"])
        called = 0
        for case in data["none"]:
            calls, seconds = await ask(case["ask"])
            out["seconds"].append(seconds)
            if calls:
                called += 1
                out["called"].append(f"{case['ask']} -> {calls}")
        out["false_calls"] = called / len(data["none"])
        out["counts"] = (len(data["calls"]), len(data["none"]))
    finally:
        await engine.close()
    return out


def _child(preset: str, models_dir: Path, instructions: str, grounding: bool, results: Any) -> None:
    results.put(asyncio.run(_asks(preset, models_dir, instructions, grounding)))


def run(report: Report, inputs: Inputs) -> None:
    context = multiprocessing.get_context("spawn")
    for (preset, chosen), (label, (instructions, grounding)) in itertools.product(
        LLM_PRESETS.items(), CANDIDATES.items()
    ):
        pull(chosen.model, inputs.models_dir)
        results = context.Queue()
        child = context.Process(target=_child, args=(preset, inputs.models_dir, instructions, grounding, results))
        child.start()
        row = results.get()
        child.join()
        calls, none = row["counts"]
        name = f"{preset} ({chosen.model.folder}), instructions {label}"
        report.add("tools", f"{name}: right call", row["right"], "share", ">= 0.9",
                   f"{calls} clear requests; wrong: " + " | ".join(row["wrong"])[:1200])  # fmt: skip
        report.add("tools", f"{name}: a call where no tool fits", row["false_calls"], "share", "< 0.1",
                   f"{none} requests; called: " + " | ".join(row["called"])[:1200])  # fmt: skip
        report.add("tools", f"{name}: seconds a request", median(row["seconds"]), "s", "", "median, 2 threads")
