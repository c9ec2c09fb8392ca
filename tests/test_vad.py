"""Streaming VAD on real speech."""

from __future__ import annotations

import numpy as np

from voxstack.asr.vad import WINDOW, Segmenter, SileroStream, load_silero_session
from voxstack.audio import resample
from voxstack.testing.speech import silence


def test_streamed_probabilities_equal_whole_file_ones(speech) -> None:
    from faster_whisper.vad import get_vad_model

    audio = resample(np.concatenate([silence(0.5), speech.say("Good morning to you."), silence(0.5)]), 22050, 16000)
    audio = audio[: audio.size // WINDOW * WINDOW]
    whole = get_vad_model()(audio).reshape(-1)
    stream = SileroStream(load_silero_session())
    parts = [stream(audio[i : i + 1234]) for i in range(0, audio.size, 1234)]
    streamed = np.concatenate(parts)
    assert streamed.shape == whole.shape
    assert np.allclose(streamed, whole, atol=1e-5)
    assert whole.max() > 0.9 and whole[:5].max() < 0.2  # speech found, leading silence not


def test_segmenter_finds_two_utterances(speech) -> None:
    one = speech.say("Turn on the lights.")
    audio = resample(np.concatenate([silence(1), one, silence(1.5), one, silence(1)]), 22050, 16000)
    stream = SileroStream(load_silero_session())
    seg = Segmenter(threshold=0.5, min_silence_ms=300, min_speech_ms=120, pad_ms=200)
    events = seg.push(stream(audio))
    assert [e.kind for e in events] == ["start", "end", "start", "end"]
    starts = [e.sample / 16000 for e in events if e.kind == "start"]
    assert 0.6 < starts[0] < 1.1
    assert events[1].sample < events[2].sample
    assert seg.force_end("stream_end") is None


def test_force_end_closes_open_speech() -> None:
    seg = Segmenter(threshold=0.5, min_silence_ms=300, min_speech_ms=64, pad_ms=0)
    events = seg.push(np.array([0.1, 0.9, 0.9, 0.9, 0.4], dtype=np.float32))
    assert [(e.kind, e.sample) for e in events] == [("start", WINDOW)]
    end = seg.force_end("stream_end")
    assert end is not None and (end.kind, end.sample) == ("end", 5 * WINDOW)
    # A blip shorter than min_speech is not speech.
    assert seg.push(np.array([0.9, 0.1, 0.1], dtype=np.float32)) == []


def test_audio_window_keeps_absolute_positions() -> None:
    from voxstack.asr.audio_window import AudioWindow

    window = AudioWindow()
    stream = np.arange(100_000, dtype=np.float32)
    for i in range(0, stream.size, 777):  # many small appends, growing past the first capacity
        window.append(stream[i : i + 777])
    assert np.array_equal(window.slice(40_000, 40_010), stream[40_000:40_010])
    window.trim(90_000)
    assert window.start == 90_000
    assert np.array_equal(window.slice(89_990, 90_005), stream[90_000:90_005])  # what was dropped is gone
    window.append(np.array([-1.0], dtype=np.float32))
    assert np.array_equal(window.slice(99_999, 100_001), np.array([99_999, -1], dtype=np.float32))
    window.trim(10)  # behind the start: nothing to do
    assert window.start == 90_000
    assert window.slice(200_000, 300_000).size == 0
