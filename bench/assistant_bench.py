"""assistant: which llm preset, prompt and sampling answer plain spoken questions best, at what speed and size.

Each preset's model (tiny, small, quality) is asked the question set
(bench/data/questions.json: plain questions with accepted answers, and
two-turn follow-ups that need the first turn) in-process through the llama.cpp
engine, under each candidate system prompt at temperature 0 (greedy, as the
presets run). The prompt a preset ships with is the first best on that set
(accuracy, then English, then shortness). The held-out set
(bench/data/heldout.json), written before any tuning and never tuned on, is
then asked with each preset's choice: the figure that says whether the choice
holds for questions nobody looked at. Each model runs in a child process of
its own so that its resident memory is its own.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import time
from pathlib import Path
from typing import Any

from bench.common import DATA_DIR, Inputs, Report, median
from voxstack.config import load_settings
from voxstack.llm.engine import ChatRequest, Delta, Finished, Sampling
from voxstack.llm.llama_engine import LlamaCppEngine
from voxstack.models import LLM_PRESETS, pull
from voxstack.testing.answers import Score

MAX_TOKENS = 64

# Candidate system prompts, tried with every model. "short" is what the presets shipped with before this bench.
PROMPTS = {
    "short": "You are a helpful voice assistant. Answer in English, in one short sentence.",
    "correct": "You are a voice assistant. Give the correct answer in one short English sentence.",
}


async def _ask(engine: LlamaCppEngine, messages: list[dict[str, str]], seed: int) -> tuple[str, float, int, float]:
    """The reply, time to first token, tokens written and seconds spent writing after the first."""
    started = time.perf_counter()
    first, tokens, text = 0.0, 0, []
    async for event in engine.stream(ChatRequest(messages, Sampling(0.0, 1.0, MAX_TOKENS, seed=seed))):
        if isinstance(event, Delta):
            first = first or time.perf_counter() - started
            text.append(event.text)
        elif isinstance(event, Finished):
            tokens = event.completion_tokens
    return "".join(text).strip(), first, tokens, time.perf_counter() - started - first


async def _score_sets(preset: str, models_dir: Path, prompts: list[str]) -> list[dict[str, Any]]:
    settings = load_settings(models_dir=str(models_dir), llm={"preset": preset, "parallel": 1})
    engine = LlamaCppEngine(settings.llm, models_dir)
    await engine.load()
    out = []
    try:
        for prompt_name in prompts:
            head = [{"role": "system", "content": PROMPTS[prompt_name]}]
            for set_name in ("questions", "heldout"):
                data = json.loads((DATA_DIR / f"{set_name}.json").read_text())
                plain, follow = Score(), Score()
                ttfts, wrong, tokens, writing = [], [], 0, 0.0
                sets = ((plain, [[item] for item in data["plain"]]), (follow, data["follow_ups"]))
                for score, conversations in sets:
                    for n, turns in enumerate(conversations):
                        messages = list(head)
                        for turn in turns:
                            messages.append({"role": "user", "content": turn["q"]})
                            reply, first, count, spent = await _ask(engine, messages, n)
                            messages.append({"role": "assistant", "content": reply})
                            tokens, writing = tokens + count, writing + spent
                        if score is plain:
                            ttfts.append(first)
                        if not score.add(reply, turns[-1]["a"]):
                            wrong.append(f"{turns[-1]['q']} -> {reply[:60]}")
                out.append(
                    {
                        "prompt": prompt_name,
                        "set": set_name,
                        "right": plain.accuracy,
                        "follow_ups": follow.accuracy,
                        "english": plain.english_share,
                        "words": plain.mean_words,
                        "ttft": median(ttfts),
                        "tokens_per_second": tokens / writing if writing else 0.0,
                        "wrong": wrong,
                    }
                )
    finally:
        await engine.close()
    return out


def _child(preset: str, models_dir: Path, prompts: list[str], results: Any) -> None:
    rows = asyncio.run(_score_sets(preset, models_dir, prompts))
    results.put((rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


def _in_child(preset: str, models_dir: Path, prompts: list[str]) -> tuple[list[dict[str, Any]], int]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_child, args=(preset, models_dir, prompts, results))
    child.start()
    rows, rss = results.get()
    child.join()
    return rows, rss


def run(report: Report, inputs: Inputs) -> None:
    for preset, chosen in LLM_PRESETS.items():
        pull(chosen.model, inputs.models_dir)
        rows, rss = _in_child(preset, inputs.models_dir, list(PROMPTS))
        shipped = next(name for name, text in PROMPTS.items() if text == chosen.system_prompt)
        for row in rows:
            name = f"{preset} ({chosen.model.folder}), prompt {row['prompt']}"
            mark = " [shipped]" if row["prompt"] == shipped else ""
            if row["set"] == "questions":
                report.add("assistant", f"{name}: right{mark}", row["right"], "share", ">= 0.9", "55 questions")
                report.add("assistant", f"{name}: follow-ups right", row["follow_ups"], "share", ">= 0.8", "")
                report.add("assistant", f"{name}: in English", row["english"], "share", "1.0", "")
                report.add("assistant", f"{name}: reply words", row["words"], "words", "", "mean")
                report.add("assistant", f"{name}: time to first token", row["ttft"], "s", "", "median, 2 threads")
                report.add("assistant", f"{name}: tokens per second", row["tokens_per_second"], "tok/s", "", "")
            else:
                report.add(
                    "assistant", f"{name}: held-out right{mark}", row["right"], "share", ">= 0.85", "never tuned on"
                )
                report.add("assistant", f"{name}: held-out follow-ups right", row["follow_ups"], "share", "", "")
            report.add(
                "assistant", f"{name}: {row['set']} wrong", len(row["wrong"]), "", "", " | ".join(row["wrong"])[:1500]
            )
        report.add("assistant", f"{preset}: resident memory", rss / 2**20, "MiB", "", "peak, one context, in-process")
