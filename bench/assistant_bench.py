"""assistant: how well the default llm answers plain spoken questions, and which settings make it answer best.

The question set (bench/data/questions.json: plain questions with accepted
answers, and two-turn follow-ups that need the first turn) is asked of the
llama.cpp engine in-process under each candidate configuration: the share
answered right, the share of replies in English, the mean reply length in
words and the median time to first token. The configuration the defaults come
from is the first one that is best on accuracy, then English, then shortness.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from bench.common import Inputs, Report, median
from voxstack.config import load_settings
from voxstack.llm.engine import Conversation, Delta, Sampling
from voxstack.llm.llama_engine import LlamaCppEngine
from voxstack.testing.answers import Score

QUESTIONS = Path(__file__).resolve().parent / "data" / "questions.json"
MAX_TOKENS = 64

# The system prompt voxstack shipped with before this bench, for comparison; the defaults now use SHORT_PROMPT.
OLD_PROMPT = (
    "You are a friendly voice assistant. Your answers are spoken aloud, so reply in one to three short, "
    "plain sentences: no lists, no markdown, no emoji, and numbers written as a person would say them."
)
SHORT_PROMPT = "You are a helpful voice assistant. Answer in English, in one short sentence."

CANDIDATES: list[tuple[str, dict[str, Any]]] = [
    ("before: t=0.7, top_p 0.95, old prompt", {"temperature": 0.7, "top_p": 0.95, "system": OLD_PROMPT}),
    ("t=0.7, old prompt, repeat 1.1", {"temperature": 0.7, "top_p": 0.95, "system": OLD_PROMPT, "repeat": 1.1}),
    ("t=0.2, top_p 0.9, old prompt", {"temperature": 0.2, "top_p": 0.9, "system": OLD_PROMPT}),
    ("t=0, old prompt", {"temperature": 0.0, "top_p": 1.0, "system": OLD_PROMPT}),
    ("t=0, short prompt", {"temperature": 0.0, "top_p": 1.0, "system": SHORT_PROMPT}),
    ("t=0, short prompt, repeat 1.1", {"temperature": 0.0, "top_p": 1.0, "system": SHORT_PROMPT, "repeat": 1.1}),
    ("t=0, no system prompt", {"temperature": 0.0, "top_p": 1.0, "system": ""}),
    ("now: the defaults", {}),
]


async def _ask(engine: LlamaCppEngine, messages: list[dict[str, str]], sampling: Sampling) -> tuple[str, float]:
    started = time.perf_counter()
    first = 0.0
    text = []
    async for event in engine.stream(Conversation(messages, sampling)):
        if isinstance(event, Delta):
            first = first or time.perf_counter() - started
            text.append(event.text)
    return "".join(text).strip(), first


async def _score(models_dir: Path, config: dict[str, Any]) -> tuple[Score, Score, list[float], list[str]]:
    settings = load_settings(models_dir=str(models_dir))
    llm = settings.llm
    if "repeat" in config:
        llm = llm.model_copy(update={"repeat_penalty": config["repeat"]})
    engine = LlamaCppEngine(llm, settings.models_dir)
    await engine.load()
    system = config.get("system", llm.system_prompt)
    data = json.loads(QUESTIONS.read_text())
    plain, follow = Score(), Score()
    ttfts: list[float] = []
    wrong: list[str] = []
    temperature, top_p = config.get("temperature", llm.temperature), config.get("top_p", llm.top_p)
    head = [{"role": "system", "content": system}] if system else []
    # A plain question is a conversation of one turn; a follow-up is scored on its last turn.
    sets = ((plain, [[item] for item in data["plain"]]), (follow, data["follow_ups"]))
    try:
        for score, conversations in sets:
            for n, turns in enumerate(conversations):
                messages = list(head)
                for turn in turns:
                    messages.append({"role": "user", "content": turn["q"]})
                    reply, first = await _ask(engine, messages, Sampling(temperature, top_p, MAX_TOKENS, seed=n))
                    messages.append({"role": "assistant", "content": reply})
                if score is plain:
                    ttfts.append(first)
                if not score.add(reply, turns[-1]["a"]):
                    wrong.append(f"{'' if score is plain else '(follow-up) '}{turns[-1]['q']} -> {reply[:80]}")
    finally:
        await engine.close()
    return plain, follow, ttfts, wrong


def run(report: Report, inputs: Inputs) -> None:
    models_dir = inputs.models_dir
    for name, config in CANDIDATES:
        plain, follow, ttfts, wrong = asyncio.run(_score(models_dir, config))
        note = f"{plain.asked} questions, {follow.asked} follow-ups; max {MAX_TOKENS} tokens"
        report.add("assistant", f"{name}: right", plain.accuracy, "share", ">= 0.9", note)
        report.add("assistant", f"{name}: follow-ups right", follow.accuracy, "share", "", "")
        report.add("assistant", f"{name}: in English", plain.english_share, "share", "1.0", "")
        report.add("assistant", f"{name}: reply words", plain.mean_words, "words", "", "mean")
        report.add("assistant", f"{name}: time to first token", median(ttfts), "s", "", "median, in-process")
        report.add("assistant", f"{name}: wrong", len(wrong), "", "", " | ".join(wrong)[:2000])
