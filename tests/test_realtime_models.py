"""``WS /v1/realtime`` on the real models, through the official `openai` SDK: a spoken question, in PCM at
24 kHz and in G.711 mu-law at 8 kHz, is heard, answered and spoken back, and the spoken reply says what its
transcript says."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from realtime_client import Session, audio_of, realtime_sessions
from stack import Stack

from voxstack.asr.engine import WhisperEngine
from voxstack.audio import resample
from voxstack.testing.speech import VOICE_RATE, pcm16, silence, sounds_like, wer

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"


@pytest.fixture
def realtime(real_stack: Stack) -> Iterator[Callable[..., Session]]:
    yield from realtime_sessions(real_stack.url)


with warnings.catch_warnings():  # the reference G.711 codec here (CPython's until 3.13)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


@pytest.mark.parametrize("fmt", ["audio/pcm", "audio/pcmu"])
def test_a_spoken_question_is_heard_answered_and_spoken(realtime, speech, asr: WhisperEngine, fmt: str) -> None:
    rate = 24_000 if fmt == "audio/pcm" else 8_000
    audio = {"format": {"type": fmt}}
    session = realtime()
    session.connection.session.update(
        session={
            "type": "realtime",
            "audio": {"input": {**audio, "transcription": {"model": "whisper-1"}}, "output": audio},
        }
    )
    session.until("session.updated")
    question = pcm16(np.concatenate([silence(0.3), speech.say(QUESTION), silence(1.5)]), VOICE_RATE, rate)
    if fmt == "audio/pcmu":
        session.speak(question, rate, lambda b: audioop.lin2ulaw(b, 2))
    else:
        session.speak(question, rate)
    events = session.until("response.done")
    heard = next(e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert sounds_like(QUESTION, heard["transcript"]), heard
    said = next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
    assert said.strip() and events[-1]["response"]["status"] == "completed"
    received = audio_of(events)
    pcm = audioop.ulaw2lin(received, 2) if fmt == "audio/pcmu" else received
    reply = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    spoken = asr.transcribe(threading.Event(), resample(reply, rate, 16_000), "en").text
    assert wer(said, spoken) <= 0.35, (said, spoken)


@pytest.mark.parametrize("live", [True, False], ids=["live", "at-once"])
def test_semantic_vad_hears_a_question_with_a_pause_for_thought_as_one_item(realtime, speech, live: bool) -> None:
    """'What is the best way', 600 ms of silence, 'to cook rice?': the asr ends the utterance at the pause (a
    300 ms silence here, so that it surely does), the llm finds those words unfinished, the speaker goes on, and
    the session commits one item with the whole question and answers it once. Sent as a microphone sends it,
    and all at once (the asr has then moved on when the join comes: the texts are joined)."""
    session = realtime()
    detection = {"type": "semantic_vad", "eagerness": "low", "silence_duration_ms": 300}
    session.connection.session.update(
        session={
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": detection}},
        }
    )
    session.until("session.updated")
    first, second = (trimmed(speech.say(text)) for text in ("What is the best way", "to cook rice?"))
    question = np.concatenate([silence(0.3), first, silence(0.6), second, silence(1.5)])
    session.speak(pcm16(question, VOICE_RATE, 24_000), 24_000, live=live)
    events = session.until("response.done")
    heard = [e["transcript"] for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert len(heard) == 1 and sounds_like("What is the best way to cook rice?", heard[0]), heard
    assert [e["type"] for e in events].count("input_audio_buffer.committed") == 1
    assert events[-1]["response"]["status"] == "completed"


def trimmed(audio: np.ndarray) -> np.ndarray:
    """Without the voice's own silence at either end: the pause between two parts is the one put there."""
    voiced = np.nonzero(np.abs(audio) > 1e-3)[0]
    return audio[voiced[0] : voiced[-1] + 1]
