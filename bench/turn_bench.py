"""turn: end of speech -> first reply audio over the WebSocket for each llm preset, and with silence-only turns.

The whole stack with its defaults but for the one setting compared, started
once per configuration; the peers bench's 20 questions (piper's voice and
espeak-ng's UK voice, whose finished questions the turn model often hears as
unfinished), streamed in real time, a fresh session each, measured from the
last audible sample to the first reply audio byte (the core bench's client).
The rows say what a preset, and words that end a turn
(core.turn_words_end_threshold), cost or save on the turn a user waits for,
in the same run, and where each one's time goes (STAGES).
"""

from __future__ import annotations

from contextlib import ExitStack

from bench.common import Inputs, Report, median, p90, whole_stack
from bench.core_bench import ws_turn
from bench.peers_bench import questions
from voxstack.models import LLM_PRESETS, pull

SOUND_ALONE = {"VOXSTACK_CORE__TURN_WORDS_END_THRESHOLD": "0"}
CONFIGS: list[tuple[str, dict[str, str]]] = [
    ("preset tiny", {"VOXSTACK_LLM__PRESET": "tiny"}),
    ("preset tiny, words end no turn", {"VOXSTACK_LLM__PRESET": "tiny", **SOUND_ALONE}),
    ("preset small", {"VOXSTACK_LLM__PRESET": "small"}),
    ("preset quality (default)", {}),
    ("preset quality, words end no turn", SOUND_ALONE),
]

#: Where a turn's time goes: the end of the turn from the last audible sample, then the reply's stages from that
#: end (negative when a speculative reply did them before it).
STAGES = [
    ("turn_end", "end of speech -> end of turn (speech_ended)"),
    ("stage asr_decode", "the final's decode"),
    ("stage llm_first_token", "end of turn -> llm first token"),
    ("stage first_sentence", "end of turn -> first piece written"),
    ("stage tts_first_chunk", "the first piece's synthesis"),
]
STAGES_NOTE = "median of turns; the reply_done timings, from speech_ended"


def run(report: Report, inputs: Inputs) -> None:
    for preset in LLM_PRESETS.values():
        pull(preset.model, inputs.models_dir)
    said = [audio for _, audio in questions(inputs)]
    note = f"{len(said)} questions (piper, espeak-ng en-gb), real time, fresh session each; median of turns"
    for name, env in CONFIGS:
        with ExitStack() as stack:
            port = whole_stack(stack, inputs.models_dir, env)
            ws_turn(port, said[0], tail=2.0)  # warm-up
            turns = [ws_turn(port, q, tail=2.0) for q in said]
        firsts = [t["first_audio"] for t in turns]
        report.add("turn", f"{name}: end of speech -> first audio byte", median(firsts), "s", "<= 0.6", note)
        report.add("turn", f"{name}: end of speech -> first audio byte, p90", p90(firsts), "s", "<= 0.9", "")
        for stage, what in STAGES:
            report.add("turn", f"{name}: {what}", median([t[stage] for t in turns]), "s", "", STAGES_NOTE)
