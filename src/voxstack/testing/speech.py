"""Real speech for tests and benches, made with the default piper voice; word error rate and its margin."""

from __future__ import annotations

import itertools
import re
import wave
from io import BytesIO
from pathlib import Path

import numpy as np

from voxstack.audio import float_to_pcm16, resample

VOICE_RATE = 22_050


class SpeechMaker:
    """Synthesises sentences with piper (the tts default voice) as float32 mono at 22,050 Hz, deterministically."""

    def __init__(self, voice_dir: Path) -> None:
        from piper import PiperVoice, SynthesisConfig

        self.voice = PiperVoice.load(str(voice_dir / "en_US-joe-medium.onnx"))
        # No random noise: the same sentence is the same audio in every run, so the
        # asr results the tests check do not change from run to run.
        self.config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        self._cache: dict[str, np.ndarray] = {}

    def say(self, text: str) -> np.ndarray:
        if text not in self._cache:
            chunks = [c.audio_float_array for c in self.voice.synthesize(text, syn_config=self.config)]
            self._cache[text] = np.concatenate(chunks).astype(np.float32)
        return self._cache[text]


def silence(seconds: float, rate: int = VOICE_RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def pcm16(samples: np.ndarray, from_rate: int = VOICE_RATE, to_rate: int = VOICE_RATE, channels: int = 1) -> bytes:
    """Mono float samples as PCM16 at ``to_rate``, duplicated into ``channels``."""
    out = resample(samples, from_rate, to_rate)
    if channels > 1:
        out = np.repeat(out[:, None], channels, axis=1).reshape(-1)
    return float_to_pcm16(out)


def wav(samples: np.ndarray, from_rate: int = VOICE_RATE, to_rate: int = VOICE_RATE, channels: int = 1) -> bytes:
    buf = BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(to_rate)
        w.writeframes(pcm16(samples, from_rate, to_rate, channels))
    return buf.getvalue()


def words(text: str) -> list[str]:
    """Lower-case words; apostrophes dropped ("L'Alma" and "L. Alma" are spellings of one sound)."""
    return re.sub(r"[^a-z0-9 ]+", " ", text.lower().replace("'", "")).split()


def join_compounds(ref: list[str], hyp: list[str]) -> list[str]:
    """``hyp`` with two words written where the reference has their compound (or the reverse) merged.

    "Stonebridge" for "stone bridge" or "sea shells" for "seashells" is a
    spelling choice, not a misheard word: the test speech should not fail on it.
    """
    compounds = {a + b: (a, b) for a, b in itertools.pairwise(ref)}
    ref_words = set(ref)
    out: list[str] = []
    i = 0
    while i < len(hyp):
        pair = hyp[i] + hyp[i + 1] if i + 1 < len(hyp) else ""
        if pair in ref_words:
            out.append(pair)
            i += 2
            continue
        out.extend(compounds.get(hyp[i], (hyp[i],)))
        i += 1
    return out


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length (compound spellings forgiven)."""
    ref = words(reference)
    hyp = join_compounds(ref, words(hypothesis))
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def edits(reference: str, hypothesis: str) -> int:
    """Word edits between the two (compound spellings forgiven)."""
    return round(wer(reference, hypothesis) * max(1, len(words(reference))))


def sounds_like(reference: str, hypothesis: str, rate: float = 0.15) -> bool:
    """Whether the asr heard ``reference``: word error at most ``rate``, and never fewer than two edits allowed.

    One misheard word can cost two edits ("What colour is" heard as "What colors"), so a bound that a
    short sentence's single slip breaks would fail on the model's spelling, not on the code under test.
    """
    return edits(reference, hypothesis) <= max(2, int(rate * len(words(reference))))


def spoken_turn(port: int, audio: bytes, headers: dict[str, str] | None = None, interim: bool = False) -> dict:
    """One WebSocket turn on the core at ``port``: 16 kHz PCM16 ``audio`` sent, the turn's ``reply_done`` event."""
    import json

    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/v1/stream", max_size=None, additional_headers=headers) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "interim_results": interim}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        for i in range(0, len(audio), 640):
            ws.send(audio[i : i + 640])
        ws.send(json.dumps({"type": "end"}))
        while True:
            message = ws.recv(timeout=120)
            if isinstance(message, str) and json.loads(message)["type"] == "reply_done":
                return json.loads(message)
