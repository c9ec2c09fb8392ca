"""Writes turn_reference.json: the turn model's probabilities on known speech, with the model's own feature code.

Run once, by hand, with the pipecat-ai 1.14.0 wheel unpacked at PIPECAT (its
`pipecat/audio/turn/smart_turn/_whisper_features.py` is the reference feature
code of Smart Turn v3; pipecat is not a dependency of voxstack):

    PIPECAT=/path/to/unpacked/wheel python tests/data/make_turn_reference.py

tests/test_turn.py checks voxstack's own input pipeline against these numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from voxstack.audio import resample
from voxstack.config import load_settings
from voxstack.models import TURN, VOICE
from voxstack.testing.speech import VOICE_RATE, SpeechMaker, silence

# (text, seconds of silence after it); the last is longer than the model's 8 s window.
CLIPS = [
    ("What is the capital of France?", 0.2),
    ("What is the capital", 0.2),
    ("Please set a timer for ten minutes.", 0.2),
    ("I would like to know", 0.2),
    ("Tell me a story about a dragon and a knight. It should be short. And then tell me another one about", 0.2),
]


def clip_audio(speech: SpeechMaker, text: str, tail: float) -> np.ndarray:
    """The clip at 16 kHz, as tests/test_turn.py makes it."""
    return resample(np.concatenate([speech.say(text), silence(tail)]), VOICE_RATE, 16_000).astype(np.float32)


def main() -> None:
    sys.path.insert(0, os.environ["PIPECAT"])
    from pipecat.audio.turn.smart_turn._whisper_features import compute_whisper_log_mel_features

    models_dir = load_settings().models_dir
    speech = SpeechMaker(VOICE.path(models_dir))
    session = ort.InferenceSession(str(TURN.path(models_dir) / TURN.files[0].name))
    out = []
    for text, tail in CLIPS:
        audio = clip_audio(speech, text, tail)
        window = audio[-128_000:]
        window = np.pad(window, (128_000 - window.size, 0))
        features = compute_whisper_log_mel_features(window, do_normalize=True)
        probability = float(session.run(None, {"input_features": features[None]})[0].reshape(-1)[0])
        out.append(
            {
                "text": text,
                "tail_seconds": tail,
                "audio_sha256": hashlib.sha256(audio.tobytes()).hexdigest(),
                "probability": probability,
            }
        )
    about = (
        "Smart Turn v3.2's probability that the speaker finished, for piper-spoken clips, with the features of "
        "pipecat-ai 1.14.0's _whisper_features.py; made by tests/data/make_turn_reference.py."
    )
    path = Path(__file__).with_name("turn_reference.json")
    path.write_text(json.dumps({"about": about, "clips": out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
