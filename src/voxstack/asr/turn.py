"""End of turn by model: Smart Turn v3 says, from the sound of the last seconds, whether the speaker has finished.

Silence alone cannot tell "What is the capital ... of France?" from a finished
question; intonation and the words' shape can. The model takes the last
8 s of the utterance (zeros before, when shorter) as Whisper-style log-mel
features of the normalised waveform, and gives the probability that the turn
is complete. Features come from faster-whisper's own extractor, which matches
the model's reference feature code (tests/test_turn.py checks it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from voxstack.asr import SAMPLE_RATE
from voxstack.config import AsrSettings
from voxstack.models import TURN, ModelError, require

logger = logging.getLogger(__name__)

SECONDS = 8
_SAMPLES = SECONDS * SAMPLE_RATE
_NORM_EPS = 1e-7


class TurnModel:
    """Probability that an utterance is a finished turn."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor

        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        # One thread: it runs beside the speculative decode, which has the others.
        options.intra_op_num_threads = threads
        try:
            self._session: Any = ort.InferenceSession(str(path), sess_options=options)
        except Exception as exc:  # onnxruntime raises its own, unexported exception types
            raise ModelError(f"turn model {path} could not be loaded: {exc}") from exc
        self._features = FeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE, chunk_length=SECONDS)
        # One answer now: a model that does not take Smart Turn's input fails at start, not mid-conversation,
        # and the first turn does not pay onnxruntime's first run.
        try:
            self.probability(np.zeros(SAMPLE_RATE, dtype=np.float32))
        except Exception as exc:
            raise ModelError(
                f"turn model {path} does not take Smart Turn v3's input (input_features, 1 x 80 x 800; "
                f"one probability out): {exc}"
            ) from exc

    @classmethod
    def for_settings(cls, settings: AsrSettings, models_dir: Path) -> TurnModel | None:
        """The configured model, or None when turns end on silence alone."""
        if settings.turn_detection != "model":
            return None
        if settings.turn_model is None:
            path = require(TURN, models_dir) / TURN.files[0].name
        else:
            path = settings.turn_model.expanduser()
            if not path.is_file():
                raise ModelError(f"turn model {path} does not exist (set VOXSTACK_ASR__TURN_MODEL to an ONNX file)")
        logger.debug("turn model %s", path)
        return cls(path)

    def features(self, audio: np.ndarray) -> np.ndarray:
        """The model's input for 16 kHz mono float audio: shape (80, 800)."""
        clip = np.asarray(audio, dtype=np.float32)[-_SAMPLES:]
        clip = np.pad(clip, (_SAMPLES - clip.size, 0))
        clip = (clip - clip.mean()) / np.sqrt(clip.var() + _NORM_EPS)
        return np.asarray(self._features(clip, padding=0), dtype=np.float32)

    def probability(self, audio: np.ndarray) -> float:
        """How likely the speaker has finished, from the utterance's audio up to now."""
        out = self._session.run(None, {"input_features": self.features(audio)[None]})
        return float(np.asarray(out[0]).reshape(-1)[0])
