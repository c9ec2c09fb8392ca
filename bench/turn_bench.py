"""turn: end of speech -> first reply audio over the WebSocket for each llm preset, and with silence-only turns.

The whole stack with its defaults but for the one setting compared, started
once per configuration; short questions from bench/data/questions.json said
by the piper voice, streamed in real time, a fresh session each, measured from
the last audible sample to the first reply audio byte (the core bench's
client). The rows say what a preset, and the turn model, cost or save on
the turn a user waits for, in the same run.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

from bench.common import Inputs, Report, median, p90, speech16k, whole_stack
from bench.core_bench import ws_turn
from voxstack.models import LLM_PRESETS, pull

QUESTIONS = Path(__file__).resolve().parent / "data" / "questions.json"
COUNT = 10
CONFIGS: list[tuple[str, dict[str, str]]] = [
    ("preset tiny", {"VOXSTACK_LLM__PRESET": "tiny"}),
    ("preset small", {"VOXSTACK_LLM__PRESET": "small"}),
    ("preset quality (default)", {}),
    (
        "preset small, silence-only turns (500 ms)",
        {
            "VOXSTACK_LLM__PRESET": "small",
            "VOXSTACK_ASR__TURN_DETECTION": "silence",
            "VOXSTACK_ASR__VAD_MIN_SILENCE_MS": "500",
        },
    ),
]


def run(report: Report, inputs: Inputs) -> None:
    for preset in LLM_PRESETS.values():
        pull(preset.model, inputs.models_dir)
    plain = json.loads(QUESTIONS.read_text())["plain"]
    questions = [speech16k(inputs.voice, item["q"]) for item in plain[:: len(plain) // COUNT][:COUNT]]
    note = f"{len(questions)} questions, real time, fresh session each; median of turns"
    for name, env in CONFIGS:
        with ExitStack() as stack:
            port = whole_stack(stack, inputs.models_dir, env)
            ws_turn(port, questions[0], tail=2.0)  # warm-up
            firsts = [ws_turn(port, q, tail=2.0)["first_audio"] for q in questions]
        report.add("turn", f"{name}: end of speech -> first audio byte", median(firsts), "s", "<= 0.6", note)
        report.add("turn", f"{name}: end of speech -> first audio byte, p90", p90(firsts), "s", "<= 0.9", "")
