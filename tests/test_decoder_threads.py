"""The text decoder on its own CTranslate2 instance with its own thread count."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from voxstack.asr.decoder_threads import SplitWhisper
from voxstack.asr.engine import WhisperEngine
from voxstack.audio import resample
from voxstack.config import load_settings
from voxstack.testing.speech import VOICE_RATE, sounds_like, wer

SENTENCE = "Please remind me to call the dentist tomorrow morning at nine."


def loaded(models_dir, **asr: Any) -> WhisperEngine:
    settings = load_settings(models_dir=str(models_dir), asr=asr)
    engine = WhisperEngine(settings.asr, settings.models_dir)
    engine.load()
    return engine


class Recording:
    """Forwards to a CTranslate2 model and notes which of its methods were called."""

    def __init__(self, inner: Any, calls: list[str], name: str) -> None:
        self._inner, self._calls, self._name = inner, calls, name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(f"{self._name}.{attr}")
            return value(*args, **kwargs)

        return call


@pytest.mark.slow
def test_the_encoder_and_the_decoder_run_on_their_own_instances(models_dir, speech) -> None:
    split = loaded(models_dir, cpu_threads=2, decoder_threads=1)
    single = loaded(models_dir, cpu_threads=2, decoder_threads=0)
    model = split._model.model
    assert isinstance(model, SplitWhisper)
    assert not isinstance(single._model.model, SplitWhisper)

    calls: list[str] = []
    model._encoder = Recording(model._encoder, calls, "encoder")
    model._decoder = Recording(model._decoder, calls, "decoder")
    audio = resample(speech.say(SENTENCE), VOICE_RATE, 16000)
    text = split.transcribe(threading.Event(), audio, None).text  # None: detect the language too
    assert {c for c in calls if c.startswith("encoder.")} == {"encoder.encode"}
    assert {"decoder.detect_language", "decoder.generate", "decoder.align"} <= set(calls)

    reference = single.transcribe(threading.Event(), audio, None).text
    assert sounds_like(SENTENCE, text), text
    assert wer(reference, text) <= 0.1, (reference, text)


def test_equal_thread_counts_keep_one_instance(models_dir) -> None:
    engine = loaded(models_dir, cpu_threads=1, decoder_threads=1)
    assert not isinstance(engine._model.model, SplitWhisper)
