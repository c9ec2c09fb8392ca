"""endpoint: what ends a turn: silence alone, or the turn model asked at a short silence; cut-offs against waits.

Each test sentence is spoken whole by the piper voice at two speaking rates,
then cut after a word where a person might stop to think (the word's end
from Whisper's word timings), and a pause is put there: the first part keeps
the intonation of a sentence that goes on, as a hesitating speaker's does.
The same sentence without a pause is the finished turn. The asr's own VAD
(silero, window by window) and segmenter run over each clip exactly as the
streaming asr does; with the turn model, the model is asked once each pause
reaches turn_silence_ms, on the utterance's audio so far (as
asr/streaming.py does), and a "finished" at or above the threshold ends the
turn there; otherwise vad_min_silence_ms does. For each rule: how often a
pause cut the speaker off, and how long after the last word a finished turn
was ended (audio time; the decode of the final comes on top, and most of it
is done by then: the speculative decode starts at the first quiet window).
No recordings of people are shipped with the repository yet: the voices are
synthetic (see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.common import Inputs, Report, median, speech16k
from voxstack.asr.engine import WhisperEngine
from voxstack.asr.turn import TurnModel
from voxstack.asr.vad import WINDOW, Segmenter, SileroStream, load_silero_session
from voxstack.config import load_settings

# (first part, second part): where a person might stop to think.
SENTENCES = [
    ("Could you tell me", "what the weather will be like tomorrow?"),
    ("I would like to know", "the capital city of Australia."),
    ("Please set a timer", "for ten minutes."),
    ("What is the best way", "to cook rice on the stove?"),
    ("Turn on the lights", "in the living room please."),
    ("How far is it", "from London to Paris?"),
    ("Can you remind me", "to call my sister tonight?"),
    ("I need a recipe", "for a simple chocolate cake."),
    ("Tell me a story", "about a dragon and a knight."),
    ("What time does the sun", "go down this evening?"),
    ("What is the capital", "of France?"),
    ("Tell me a fun fact", "about the moon."),
]
PAUSES = (0.3, 0.6)  # seconds of hesitation
SILENCES = (300, 500, 700, 1000)  # ms of silence that end a turn on silence alone
TURN_SILENCES = (200, 300)  # ms of silence after which the turn model is asked
THRESHOLDS = (0.5, 0.9, 0.95)
MAX_SILENCES = (700, 1000)  # with the model: the silence that ends a turn it called unfinished
RATES = (1.0, 1.25)  # piper length scale: normal and slower speech
RATE = 16_000
TAIL = 1.5  # seconds of silence after the last word


class Paced:
    """The piper voice at another speaking rate, without random variation (what speech16k asks of a voice)."""

    def __init__(self, voice, scale: float) -> None:  # type: ignore[no-untyped-def]
        from piper import SynthesisConfig

        self.voice = voice
        self.config = SynthesisConfig(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)

    def synthesize(self, text: str):  # type: ignore[no-untyped-def]
        return self.voice.synthesize(text, syn_config=self.config)


@dataclass
class Clip:
    audio: np.ndarray
    second_starts: int  # where speech resumes after the pause (0: no pause, a finished turn)
    speech_ends: int
    pause: float
    probabilities: np.ndarray  # VAD, per window


def hesitation(engine: WhisperEngine, whole: np.ndarray, first: str, pause: float) -> tuple[np.ndarray, int] | None:
    """``whole`` with ``pause`` seconds of silence put after its ``first`` words (Whisper's word timings say
    where), and the sample where speech resumes; None when Whisper did not hear a word boundary there."""
    words = engine.transcribe(threading.Event(), whole, "en", word_timings=True).words
    k = len(first.split())
    if len(words) <= k:
        return None
    cut = int((words[k - 1].end + words[k].start) / 2 * RATE)
    gap = np.zeros(int(pause * RATE), np.float32)
    return np.concatenate([whole[:cut], gap, whole[cut:]]), cut + gap.size


def _clips(voice, engine: WhisperEngine, session) -> list[Clip]:  # type: ignore[no-untyped-def]
    out = []
    for scale in RATES:
        paced = Paced(voice, scale)
        for first, second in SENTENCES:
            whole = speech16k(paced, f"{first} {second}")
            lead, tail = np.zeros(8000, np.float32), np.zeros(int(TAIL * RATE), np.float32)
            finished = np.concatenate([lead, whole, tail])
            out.append(Clip(finished, 0, lead.size + whole.size, 0.0, SileroStream(session)(finished)))
            for pause in PAUSES:
                paused = hesitation(engine, whole, first, pause)
                if paused is None:
                    continue  # misheard: no word boundary to cut at
                audio = np.concatenate([lead, paused[0], tail])
                resumes = lead.size + paused[1]
                out.append(Clip(audio, resumes, audio.size - tail.size, pause, SileroStream(session)(audio)))
    return out


def _ends(clip: Clip, silence_ms: int, asked: Callable[[int, int], bool] | None, ask_ms: int) -> list[int]:
    """Where the turn ends in ``clip`` (samples): the streaming asr's rules over its VAD probabilities."""
    asr = load_settings().asr
    segmenter = Segmenter(asr.vad_threshold, silence_ms, asr.vad_min_speech_ms, asr.vad_pad_ms)
    ask_windows = int(np.ceil(ask_ms * RATE / 1000 / WINDOW))
    ends, start, last_asked = [], 0, -1
    for i in range(clip.probabilities.size):
        for event in segmenter.push(clip.probabilities[i : i + 1]):
            if event.kind == "start":
                start = event.sample
            else:
                ends.append((i + 1) * WINDOW)
        if asked is not None and segmenter.pause_windows >= ask_windows and segmenter.speech_end != last_asked:
            last_asked = segmenter.speech_end
            if asked(start, segmenter.position):
                segmenter.end_pause("turn_model")
                ends.append((i + 1) * WINDOW)
    return ends


def _score(clips: list[Clip], ends_of: Callable[[Clip], list[int]]) -> tuple[dict[float, float], list[float]]:
    """Share of clips cut off per pause; the waits after the last word of the finished turns."""
    cuts: dict[float, list[bool]] = {p: [] for p in PAUSES}
    waits = []
    for clip in clips:
        ends = ends_of(clip)
        if clip.second_starts:
            cuts[clip.pause].append(any(end < clip.second_starts for end in ends))
        after = [end for end in ends if end >= clip.speech_ends]
        if after and not clip.second_starts:
            waits.append((after[0] - clip.speech_ends) / RATE)
    return {p: sum(c) / len(c) for p, c in cuts.items()}, waits


def run(report: Report, inputs: Inputs) -> None:
    settings = load_settings(models_dir=str(inputs.models_dir))
    engine = WhisperEngine(settings.asr, inputs.models_dir)
    engine.load()
    turn = TurnModel.for_settings(settings.asr.model_copy(update={"turn_detection": "model"}), inputs.models_dir)
    assert turn is not None
    clips = _clips(inputs.voice, engine, load_silero_session())
    note = f"{len(SENTENCES)} sentences x {len(RATES)} speaking rates, piper voice"

    def row(name: str, ends_of: Callable[[Clip], list[int]]) -> None:
        cuts, waits = _score(clips, ends_of)
        per_pause = ", ".join(f"{int(p * 1000)} ms pause: {share:.0%} cut" for p, share in cuts.items())
        held = sum(w >= 0.6 for w in waits) / max(1, len(waits))
        report.add("endpoint", f"{name}: 600 ms hesitations cut off", cuts[0.6], "share", "<= 0.1", per_pause)
        report.add(
            "endpoint",
            f"{name}: last word -> turn ended",
            median(waits),
            "s",
            "",
            f"median, audio time; mean {sum(waits) / max(1, len(waits)):.2f} s; {held:.0%} of finished turns "
            f"waited 0.6 s or more; {note}",
        )

    for silence in SILENCES:
        row(f"silence {silence} ms", lambda clip, s=silence: _ends(clip, s, None, 0))  # type: ignore[misc]
    # The model's answer depends on the audio only: ask once per clip and stretch of audio, for every threshold.
    answers: dict[tuple[int, int, int], float] = {}

    def probability(clip: Clip, start: int, end: int) -> float:
        key = (id(clip), start, end)
        if key not in answers:
            answers[key] = turn.probability(clip.audio[start:end])
        return answers[key]

    for ask_ms in TURN_SILENCES:
        for threshold in THRESHOLDS:
            for longest in MAX_SILENCES:
                row(
                    f"model at {ask_ms} ms, threshold {threshold}, else {longest} ms",
                    lambda clip, a=ask_ms, t=threshold, m=longest: _ends(  # type: ignore[misc]
                        clip, m, lambda s, e: probability(clip, s, e) >= t, a
                    ),
                )
