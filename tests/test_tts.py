"""The tts service end to end: a real server process, the real voice, checked by the real asr engine."""

from __future__ import annotations

import io
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from voxstack.asr.engine import WhisperEngine
from voxstack.audio import resample
from voxstack.testing.processes import served, voxstack_command, wait_until
from voxstack.testing.speech import sounds_like
from voxstack.v1 import common_pb2, tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.slow

SENTENCE = "The library opens early in the morning and closes late in the evening."
THREE = "Good morning, everyone. Today we will talk about the weather. Tomorrow looks sunny and warm."
MAX_TEXT = 2000
PCM16 = common_pb2.AUDIO_ENCODING_PCM16
WAV = common_pb2.AUDIO_ENCODING_WAV


@pytest.fixture(scope="module")
def tts_server(models_dir: Path, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    env = {"VOXSTACK_MODELS_DIR": str(models_dir), "VOXSTACK_TTS__MAX_TEXT_CHARS": str(MAX_TEXT)}
    log = tmp_path_factory.mktemp("tts") / "tts.log"
    with served("tts", env=env, log=log) as process:
        yield process.address, log


@pytest.fixture
def stub(tts_server) -> Iterator[tts_pb2_grpc.TtsStub]:
    with grpc.insecure_channel(tts_server[0]) as channel:
        yield tts_pb2_grpc.TtsStub(channel)


# piper draws random noise for durations and timbre; with none, equal text gives equal audio.
STEADY = tts_pb2.SynthesisOptions(noise_scale=0, noise_w=0)


def request(text: str, encoding: int = PCM16, rate: int = 0, **kw) -> tts_pb2.SynthesizeRequest:
    return tts_pb2.SynthesizeRequest(
        text=text, format=common_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate), **kw
    )


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768


def transcribe(asr: WhisperEngine, audio: np.ndarray, rate: int) -> str:
    return asr.transcribe(threading.Event(), resample(audio, rate, 16000), "en").text


def test_known_sentence_is_real_speech(stub, asr) -> None:
    reply = stub.Synthesize(request(SENTENCE), timeout=60)
    assert reply.format.sample_rate_hz == 22050 and reply.format.channels == 1
    assert reply.voice == "en_US-joe-medium"
    audio = samples(reply.audio)
    seconds = audio.size / 22050
    assert 2.0 < seconds < 7.0
    assert float(np.sqrt(np.mean(audio**2))) > 0.02  # not silence
    assert reply.timings.audio_seconds == pytest.approx(seconds, abs=0.01)
    assert 0 < reply.timings.processing_seconds < reply.timings.audio_seconds
    text = transcribe(asr, audio, 22050)
    assert sounds_like(SENTENCE, text), text


def test_numbers_and_abbreviations_are_spoken(stub, asr) -> None:
    reply = stub.Synthesize(request("Dr. Smith paid 25 dollars, e.g. for lunch."), timeout=60)
    text = transcribe(asr, samples(reply.audio), 22050).lower()
    assert "doctor" in text or "dr" in text
    assert "25" in text or "twenty-five" in text or "twenty five" in text
    assert "for example" in text or "e.g." in text


def test_stream_gives_a_chunk_per_sentence_early(stub) -> None:
    unary = stub.Synthesize(request(THREE, options=STEADY), timeout=60)
    started = time.perf_counter()
    chunks = []
    first_at = None
    for chunk in stub.SynthesizeStream(request(THREE, options=STEADY), timeout=60):
        first_at = first_at or time.perf_counter() - started
        chunks.append(chunk)
    assert len(chunks) >= 3
    assert [c.sequence for c in chunks] == list(range(len(chunks)))
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert [c.span.text for c in chunks] == [
        "Good morning, everyone.",
        "Today we will talk about the weather.",
        "Tomorrow looks sunny and warm.",
    ]
    assert all(THREE[c.span.start : c.span.end] == c.span.text for c in chunks)
    assert first_at < unary.timings.total_seconds  # the first sentence came before the whole text was done
    assert chunks[-1].timings.first_result_seconds < chunks[-1].timings.total_seconds
    streamed = b"".join(c.audio for c in chunks)
    assert abs(len(streamed) - len(unary.audio)) / 2 / 22050 < 0.005


@pytest.mark.parametrize("rate", [16000, 48000])
def test_resampled_output_keeps_its_duration(stub, rate: int, asr) -> None:
    native = stub.Synthesize(request(SENTENCE, options=STEADY), timeout=60)
    reply = stub.Synthesize(request(SENTENCE, rate=rate, options=STEADY), timeout=60)
    assert reply.format.sample_rate_hz == rate
    assert len(reply.audio) / 2 / rate == pytest.approx(len(native.audio) / 2 / 22050, abs=0.01)
    assert sounds_like(SENTENCE, transcribe(asr, samples(reply.audio), rate))


def test_wav_output_and_wav_stream_chunks(stub) -> None:
    reply = stub.Synthesize(request(SENTENCE, encoding=WAV, rate=16000), timeout=60)
    with wave.open(io.BytesIO(reply.audio)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert w.getnframes() / 16000 == pytest.approx(reply.timings.audio_seconds, abs=0.01)
    for chunk in stub.SynthesizeStream(request(THREE, encoding=WAV), timeout=60):
        with wave.open(io.BytesIO(chunk.audio)) as w:
            assert w.getnframes() > 0


def test_length_scale_slows_speech(stub) -> None:
    normal = stub.Synthesize(request(SENTENCE, options=STEADY), timeout=60)
    slow_options = tts_pb2.SynthesisOptions(length_scale=1.5, noise_scale=0, noise_w=0)
    slow = stub.Synthesize(request(SENTENCE, options=slow_options), timeout=60)
    assert 1.3 < len(slow.audio) / len(normal.audio) < 1.7


def test_list_voices(stub) -> None:
    voices = stub.ListVoices(tts_pb2.ListVoicesRequest(), timeout=10).voices
    assert [(v.name, v.language, v.sample_rate_hz, v.is_default) for v in voices] == [
        ("en_US-joe-medium", "en_US", 22050, True)
    ]


def test_long_text_is_accepted_and_streamed(stub) -> None:
    text = " ".join(f"This is sentence number {i} of a long text." for i in range(40))
    assert len(text) < MAX_TEXT
    chunks = list(stub.SynthesizeStream(request(text), timeout=120))
    assert len(chunks) == 40 and chunks[-1].last


def test_control_characters_are_harmless(stub) -> None:
    reply = stub.Synthesize(request("Hello\x00 there\x07, \x1b[31mfriend\t\r\n."), timeout=60)
    assert len(reply.audio) > 22050  # said something


BAD = [
    ("empty", request(""), "text is empty"),
    ("whitespace", request(" \n\t "), "text is empty"),
    ("too long", request("word " * (MAX_TEXT // 4)), f"the limit is {MAX_TEXT}"),
    (
        "unknown voice",
        request("hi", voice="nobody"),
        "unknown voice 'nobody': available voices are en_US-joe-medium",
    ),
    ("bad encoding", request("hi", encoding=99), "output encoding 99 is not supported"),
    ("impossible rate", request("hi", rate=3), "sample_rate_hz 3 is impossible"),
    ("unsupported rate", request("hi", rate=96000), "sample_rate_hz 96000 is not supported for output"),
    (
        "stereo",
        tts_pb2.SynthesizeRequest(text="hi", format=common_pb2.AudioFormat(channels=2)),
        "tts output is mono",
    ),
    (
        "absurd rate",
        request("hi", options=tts_pb2.SynthesisOptions(length_scale=100)),
        "options.length_scale 100 is out of range",
    ),
    (
        "negative rate",
        request("hi", options=tts_pb2.SynthesisOptions(length_scale=-1)),
        "options.length_scale -1 is out of range",
    ),
    (
        "noise",
        request("hi", options=tts_pb2.SynthesisOptions(noise_scale=9)),
        "options.noise_scale 9 is out of range",
    ),
    (
        "speaker",
        request("hi", options=tts_pb2.SynthesisOptions(speaker_id=3)),
        "options.speaker_id 3 does not exist",
    ),
    (
        "silence",
        request("hi", options=tts_pb2.SynthesisOptions(sentence_silence_seconds=60)),
        "sentence_silence_seconds 60",
    ),
]


@pytest.mark.parametrize(("name", "req", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_invalid_argument_and_service_keeps_serving(stub, name, req, message) -> None:
    for call in (stub.Synthesize, lambda r, timeout: list(stub.SynthesizeStream(r, timeout=timeout))):
        with pytest.raises(grpc.RpcError) as info:
            call(req, timeout=30)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert message in info.value.details()
    assert len(stub.Synthesize(request("Still here."), timeout=30).audio) > 0


def test_invalid_utf8_is_invalid_argument(tts_server) -> None:
    with grpc.insecure_channel(tts_server[0]) as channel:
        synthesize = channel.unary_unary("/voxstack.v1.Tts/Synthesize")
        with pytest.raises(grpc.RpcError) as info:
            synthesize(b"\x0a\x03\xc3\x28\xff", timeout=10)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_cancel_stops_the_remaining_sentences(stub, tts_server) -> None:
    _, log = tts_server
    text = " ".join(f"Here is sentence number {i}, which takes a moment to say." for i in range(30))
    call = stub.SynthesizeStream(request(text), timeout=60, metadata=(("x-request-id", "cancel-me-1"),))
    next(call)
    call.cancel()
    # The call's log line comes when its work has stopped: no sentence is made after it.
    wait_until(lambda: "CANCELLED" in log.read_text(), "the cancelled call's log line")
    lines = [line for line in log.read_text().splitlines() if "cancel-me-1" in line]
    synthesised = [line for line in lines if "sentence " in line and "/30:" in line]
    assert 1 <= len(synthesised) < 10, lines
    assert any("CANCELLED" in line for line in lines)
    assert len(stub.Synthesize(request("Next."), timeout=30).audio) > 0


def test_speak_cli(tts_server, tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    result = subprocess.run(
        voxstack_command("speak", SENTENCE, "-o", str(out), "--addr", tts_server[0], "--rate", "16000"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    with wave.open(str(out)) as w:
        assert w.getframerate() == 16000 and w.getnframes() > 16000
    listed = subprocess.run(
        voxstack_command("speak", "--list-voices", "--addr", tts_server[0]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "en_US-joe-medium  en_US  22050 Hz (default)" in listed.stdout
    bad = subprocess.run(
        voxstack_command("speak", "hi", "--voice", "zz", "--addr", tts_server[0]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "unknown voice 'zz'" in bad.stderr
    empty = subprocess.run(
        voxstack_command("speak", "--addr", tts_server[0]), capture_output=True, text=True, timeout=60
    )
    assert empty.returncode == 2 and "nothing to say" in empty.stderr
