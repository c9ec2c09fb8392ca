"""A transcript's segments (sentences, from its word timings) and their SRT and WebVTT forms."""

from __future__ import annotations

from dataclasses import dataclass

from voxstack.v1 import asr_pb2

#: A pause this long between words starts a new segment even without a full stop.
PAUSE = 1.0


@dataclass
class Cue:
    start: float
    end: float
    text: str

    def openai(self, index: int) -> dict[str, object]:
        """The segment as OpenAI's verbose_json has it (fields Whisper's decoder would fill are neutral)."""
        return {
            "id": index,
            "seek": 0,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": 0.0,
            "compression_ratio": 1.0,
            "no_speech_prob": 0.0,
        }


def segments(result: asr_pb2.RecognitionResult) -> list[Cue]:
    words = list(result.words)
    if not words:
        text = result.text.strip()
        return [Cue(result.start_seconds, result.end_seconds, text)] if text else []
    cues: list[Cue] = []
    current: list[asr_pb2.Word] = []
    for word in words:
        if current and word.start_seconds - current[-1].end_seconds > PAUSE:
            cues.append(_cue(current))
            current = []
        current.append(word)
        if word.word.strip().endswith((".", "?", "!")):
            cues.append(_cue(current))
            current = []
    if current:
        cues.append(_cue(current))
    return cues


def _cue(words: list[asr_pb2.Word]) -> Cue:
    return Cue(words[0].start_seconds, words[-1].end_seconds, "".join(w.word for w in words).strip())


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt(cues: list[Cue]) -> str:
    blocks = [f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text}\n" for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def vtt(cues: list[Cue]) -> str:
    blocks = [f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{c.text}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)
