"""The fitted encoder window: what it keeps, what it pads with, and the fallback to the full window."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from voxstack.asr.engine import WhisperEngine
from voxstack.asr.fitted_window import content_frames, fit
from voxstack.audio import resample
from voxstack.config import load_settings
from voxstack.testing.speech import VOICE_RATE, sounds_like, wer


def padded(frames: int, total: int = 3000) -> np.ndarray:
    """Features as faster-whisper hands them to the encoder: content, then exact zeros."""
    rng = np.random.default_rng(frames)
    features = np.zeros((1, 80, total), dtype=np.float32)
    features[..., :frames] = rng.uniform(-1.5, 1.0, (80, frames))
    return features


def test_content_frames_stop_at_the_zero_padding() -> None:
    assert content_frames(padded(512)) == 512
    assert content_frames(padded(512)[0]) == 512  # unbatched
    assert content_frames(padded(3000)) == 3000
    assert content_frames(np.zeros((1, 80, 3000), np.float32)) == 0


def test_fit_keeps_the_content_and_pads_the_margin_with_its_quietest_value() -> None:
    features = padded(512)
    fitted = fit(features, 200)
    assert fitted.shape == (1, 80, 712)
    np.testing.assert_array_equal(fitted[..., :512], features[..., :512])
    assert np.all(fitted[..., 512:] == features[..., :512].min())
    assert features[..., 512:].max() == 0  # the input is not changed


def test_fit_never_grows_the_window_and_leaves_full_windows_and_batches_alone() -> None:
    assert fit(padded(2900), 200).shape[-1] == 3000
    full = padded(3000)
    assert fit(full, 200) is full
    batch = np.concatenate([padded(100), padded(200)])
    assert fit(batch, 200) is batch


@pytest.fixture(scope="module")
def engines(models_dir) -> dict[str, WhisperEngine]:
    out = {}
    for name, fitted in (("fitted", True), ("full", False)):
        settings = load_settings(models_dir=str(models_dir), asr={"fit_window": fitted})
        engine = WhisperEngine(settings.asr, settings.models_dir)
        engine.load()
        out[name] = engine
    return out


@pytest.mark.slow
def test_fitted_window_reads_speech_as_the_full_window_does(engines, speech) -> None:
    sentence = "Please remind me to call the dentist tomorrow morning at nine."
    audio = resample(speech.say(sentence), VOICE_RATE, 16000)
    texts = {name: e.transcribe(threading.Event(), audio, "en").text for name, e in engines.items()}
    assert sounds_like(sentence, texts["fitted"]), texts
    assert wer(texts["full"], texts["fitted"]) <= 0.1, texts


@pytest.mark.slow
def test_a_looping_decode_is_redone_with_the_full_window(engines, speech, monkeypatch) -> None:
    engine = engines["fitted"]
    windows: list[bool] = []
    decode = engine._decode

    def looping_once(*args, **kwargs):
        windows.append(bool(getattr(engine._model._full, "on", False)))
        transcript, ratio = decode(*args, **kwargs)
        return transcript, (9.9 if len(windows) == 1 else ratio)

    monkeypatch.setattr(engine, "_decode", looping_once)
    sentence = "Set a timer for ten minutes."
    transcript = engine.transcribe(threading.Event(), resample(speech.say(sentence), VOICE_RATE, 16000), "en")
    assert windows == [False, True]  # fitted first, then the full window
    assert wer(sentence, transcript.text) <= 0.2, transcript.text
    assert not engine._model._full.on  # the next decode fits again
