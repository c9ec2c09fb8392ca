"""``WS /v1/realtime`` on the real models, through the official `openai` SDK: a spoken question at 24 kHz
is heard, answered and spoken back, and the spoken reply says what its transcript says."""

from __future__ import annotations

import threading
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


def test_a_spoken_question_is_heard_answered_and_spoken(realtime, speech, asr: WhisperEngine) -> None:
    session = realtime()
    session.connection.session.update(
        session={"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}
    )
    session.until("session.updated")
    session.speak(pcm16(np.concatenate([silence(0.3), speech.say(QUESTION), silence(1.5)]), VOICE_RATE, 24_000))
    events = session.until("response.done")
    heard = next(e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert sounds_like(QUESTION, heard["transcript"]), heard
    said = next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
    assert said.strip() and events[-1]["response"]["status"] == "completed"
    reply = np.frombuffer(audio_of(events), dtype="<i2").astype(np.float32) / 32768
    spoken = asr.transcribe(threading.Event(), resample(reply, 24_000, 16_000), "en").text
    assert wer(said, spoken) <= 0.35, (said, spoken)
