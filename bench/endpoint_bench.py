"""endpoint: how much silence ends an utterance: pauses that cut a speaker off vs the wait after the last word.

Each test utterance is a sentence said in two parts with a pause between them
(a speaker who hesitates mid-sentence), made with the piper voice at two
speaking rates. The asr's own voice activity detection (silero, as the
streaming asr runs it, window by window) scores each utterance once; the
asr's segmenter then runs over those probabilities with each candidate
end-of-utterance silence. For each: how often a pause of each length ended
the utterance early (a cut), and how long after the last word the end was
detected (audio time; the decode of the final comes on top).
"""

from __future__ import annotations

import numpy as np

from bench.common import Inputs, Report, median, speech16k
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
]
PAUSES = (0.15, 0.25, 0.35, 0.5, 0.7)  # seconds
SILENCES = (200, 250, 300, 400, 500, 700)  # ms of silence that end an utterance
RATES = (1.0, 1.25)  # piper length scale: normal and slower speech
RATE = 16_000


class _Paced:
    """The piper voice at another speaking rate, without random variation (what speech16k asks of a voice)."""

    def __init__(self, voice, scale: float) -> None:  # type: ignore[no-untyped-def]
        from piper import SynthesisConfig

        self.voice = voice
        self.config = SynthesisConfig(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)

    def synthesize(self, text: str):  # type: ignore[no-untyped-def]
        return self.voice.synthesize(text, syn_config=self.config)


def _utterances(voice) -> list[tuple[np.ndarray, int, int, float]]:  # type: ignore[no-untyped-def]
    """(audio, start of the second part, end of speech, pause) for every sentence, pause and speaking rate."""
    out = []
    for scale in RATES:
        paced = _Paced(voice, scale)
        for first, second in SENTENCES:
            a, b = speech16k(paced, first), speech16k(paced, second)
            for pause in PAUSES:
                lead, gap, tail = np.zeros(8000), np.zeros(int(pause * RATE)), np.zeros(int(1.5 * RATE))
                audio = np.concatenate([lead, a, gap, b, tail]).astype(np.float32)
                out.append((audio, lead.size + a.size + gap.size, lead.size + a.size + gap.size + b.size, pause))
    return out


def run(report: Report, inputs: Inputs) -> None:
    voice, models_dir = inputs.voice, inputs.models_dir
    asr = load_settings(models_dir=str(models_dir)).asr
    session = load_silero_session()
    scored = []
    for audio, second_starts, speech_ends, pause in _utterances(voice):
        scored.append((SileroStream(session)(audio), second_starts, speech_ends, pause))
    for silence in SILENCES:
        cuts = {pause: 0 for pause in PAUSES}
        counts = {pause: 0 for pause in PAUSES}
        waits = []
        for probabilities, second_starts, speech_ends, pause in scored:
            segmenter = Segmenter(asr.vad_threshold, silence, asr.vad_min_speech_ms, asr.vad_pad_ms)
            ends = [
                (i + 1) * WINDOW
                for i in range(probabilities.size)
                if any(e.kind == "end" for e in segmenter.push(probabilities[i : i + 1]))
            ]
            counts[pause] += 1
            cuts[pause] += any(end < second_starts for end in ends)
            after = [end for end in ends if end >= speech_ends]
            if after:
                waits.append((after[0] - speech_ends) / RATE)
        short = [p for p in PAUSES if p <= 0.35]
        cut_short = sum(cuts[p] for p in short) / sum(counts[p] for p in short)
        per_pause = ", ".join(f"{int(p * 1000)} ms: {cuts[p] / counts[p]:.0%}" for p in PAUSES)
        report.add("endpoint", f"silence {silence} ms: pauses <= 350 ms that cut", cut_short, "share", "", per_pause)
        report.add(
            "endpoint", f"silence {silence} ms: last word -> end detected", median(waits), "s", "", "median, audio time"
        )
