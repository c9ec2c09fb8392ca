"""What a stream sends of a decode: the result message, how each utterance ended, how stable a partial is."""

from __future__ import annotations

from voxstack.asr.engine import Transcript
from voxstack.v1 import asr_pb2

END_RULES = {
    "turn_model": asr_pb2.END_RULE_TURN_MODEL,
    "silence": asr_pb2.END_RULE_SILENCE,
    "words": asr_pb2.END_RULE_WORDS,
    "stream_end": asr_pb2.END_RULE_STREAM_END,
    "max_length": asr_pb2.END_RULE_MAX_LENGTH,
}


def result_message(t: Transcript, joins_previous: bool = False) -> asr_pb2.RecognitionResult:
    return asr_pb2.RecognitionResult(
        joins_previous=joins_previous,
        text=t.text,
        language=t.language,
        language_probability=t.language_probability,
        words=[
            asr_pb2.Word(word=w.word, start_seconds=w.start, end_seconds=w.end, probability=w.probability)
            for w in t.words
        ],
        confidence=t.confidence,
        start_seconds=t.start,
        end_seconds=t.end,
    )


def stability(previous: str, current: str) -> float:
    """Share of the current words that the previous partial already had, in order."""
    old, new = previous.split(), current.split()
    if not new:
        return 0.0
    same = 0
    for a, b in zip(old, new, strict=False):
        if a.lower() != b.lower():
            break
        same += 1
    return same / len(new)
