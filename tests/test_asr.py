"""The asr service end to end: a real server process, the real model, real speech."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from voxstack.errors import EXIT_STARTUP
from voxstack.rpc_status import failure_from_error
from voxstack.testing.processes import served, voxstack_command
from voxstack.testing.speech import VOICE_RATE, pcm16, silence, sounds_like, wav
from voxstack.v1 import asr_pb2, asr_pb2_grpc, common_pb2

pytestmark = pytest.mark.slow

SENTENCE = "The quick brown fox jumps over the lazy dog near the old stone bridge."
FIRST = "Please turn on the kitchen lights."
SECOND = "What is the weather like tomorrow?"
MAX_MESSAGE = 4 * 1024 * 1024
MAX_SECONDS = 30


@pytest.fixture(scope="module")
def asr_address(models_dir, tmp_path_factory) -> Iterator[str]:
    env = {
        "VOXSTACK_MODELS_DIR": str(models_dir),
        "VOXSTACK_ASR__PARTIAL_INTERVAL": "0.3",
        "VOXSTACK_ASR__MAX_MESSAGE_BYTES": str(MAX_MESSAGE),
        "VOXSTACK_ASR__MAX_AUDIO_SECONDS": str(MAX_SECONDS),
        "VOXSTACK_ASR__MAX_CONCURRENCY": "1",
    }
    with served("asr", env=env, log=tmp_path_factory.mktemp("asr") / "asr.log") as process:
        yield process.address


@pytest.fixture
def stub(asr_address: str) -> Iterator[asr_pb2_grpc.AsrStub]:
    with grpc.insecure_channel(asr_address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        yield asr_pb2_grpc.AsrStub(channel)


def config(
    rate: int = 16000, channels: int = 1, encoding: int = common_pb2.AUDIO_ENCODING_PCM16, **kw
) -> asr_pb2.RecognitionConfig:
    return asr_pb2.RecognitionConfig(
        format=common_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate, channels=channels), **kw
    )


def recognize_wav(stub, data: bytes, **kw) -> asr_pb2.RecognizeResponse:
    return stub.Recognize(
        asr_pb2.RecognizeRequest(config=config(0, 0, common_pb2.AUDIO_ENCODING_WAV, **kw), audio=data),
        timeout=60,
    )


def stream(
    stub, audio: bytes, rate: int = 16000, chunk_bytes: int = 3200, interim: bool = False, pace: float = 0.0, **kw
):
    def requests():
        yield asr_pb2.StreamingRecognizeRequest(config=config(rate, interim_results=interim, **kw))
        for i in range(0, len(audio), chunk_bytes):
            yield asr_pb2.StreamingRecognizeRequest(audio=audio[i : i + chunk_bytes])
            if pace:
                time.sleep(pace * chunk_bytes / 2 / rate)

    return list(stub.StreamingRecognize(requests(), timeout=120))


def finals(replies) -> list[str]:
    return [r.final.result.text for r in replies if r.WhichOneof("event") == "final"]


def test_recognize_known_sentence(stub, speech) -> None:
    audio = np.concatenate([silence(0.5), speech.say(SENTENCE), silence(0.5)])
    reply = recognize_wav(stub, wav(audio))
    result = reply.result
    assert sounds_like(SENTENCE, result.text), result.text
    assert result.language == "en"
    assert 0.5 < result.confidence <= 1.0
    starts = [w.start_seconds for w in result.words]
    assert len(result.words) >= 10 and starts == sorted(starts)
    assert all(w.end_seconds >= w.start_seconds for w in result.words)
    assert reply.timings.audio_seconds == pytest.approx(audio.size / VOICE_RATE, abs=0.01)
    assert 0 < reply.timings.processing_seconds <= reply.timings.total_seconds


def test_language_detection_on_request(stub, speech) -> None:
    reply = recognize_wav(stub, wav(speech.say(SENTENCE)), language="auto")
    assert reply.result.language == "en"
    assert reply.result.language_probability > 0.5
    assert sounds_like(SENTENCE, reply.result.text)


def test_streaming_recognize_known_sentence(stub, speech) -> None:
    audio = np.concatenate([silence(0.5), speech.say(SENTENCE), silence(1.0)])
    replies = stream(stub, pcm16(audio, to_rate=16000))
    kinds = [r.WhichOneof("event") for r in replies]
    assert kinds == ["speech_started", "speech_ended", "final"]
    assert sounds_like(SENTENCE, " ".join(finals(replies)))
    final = replies[-1].final
    assert final.timings.audio_seconds > 3
    assert replies[0].speech_started.offset_seconds == pytest.approx(0.5, abs=0.35)


def test_streaming_finals_carry_word_timings_when_asked(stub, speech) -> None:
    audio = pcm16(np.concatenate([silence(0.5), speech.say(SENTENCE), silence(1.0)]), to_rate=16000)
    plain = stream(stub, audio)[-1].final.result
    timed = stream(stub, audio, word_timings=True)[-1].final.result
    assert plain.text == timed.text and sounds_like(SENTENCE, timed.text), (plain.text, timed.text)
    assert not plain.words  # a conversation needs the text: no alignment pass
    starts = [w.start_seconds for w in timed.words]
    assert len(timed.words) >= 10 and starts == sorted(starts) and starts[0] >= 0.3, starts  # stream offsets


def test_two_utterances_give_two_finals_in_order(stub, speech) -> None:
    audio = np.concatenate([silence(0.3), speech.say(FIRST), silence(1.5), speech.say(SECOND), silence(0.3)])
    replies = stream(stub, pcm16(audio, to_rate=16000))  # ends in speech padding: closing flushes
    texts = finals(replies)
    assert len(texts) == 2, texts
    assert sounds_like(FIRST, texts[0]) and sounds_like(SECOND, texts[1])
    indexes = [(r.utterance_index, r.WhichOneof("event")) for r in replies]
    assert indexes == [
        (0, "speech_started"),
        (0, "speech_ended"),
        (0, "final"),
        (1, "speech_started"),
        (1, "speech_ended"),
        (1, "final"),
    ]
    first_final, second_final = (r.final.result for r in replies if r.WhichOneof("event") == "final")
    assert first_final.end_seconds < second_final.start_seconds


def test_a_stream_may_set_its_own_turn_detection(stub, speech) -> None:
    """The Realtime API's per-session VAD: a stream that asks for 2 s of silence alone hears the two
    sentences above as one utterance."""
    audio = np.concatenate([silence(0.3), speech.say(FIRST), silence(1.5), speech.say(SECOND), silence(0.3)])
    replies = stream(stub, pcm16(audio, to_rate=16000), vad_min_silence_ms=2000, turn_detection="silence")
    texts = finals(replies)
    assert len(texts) == 1 and sounds_like(f"{FIRST} {SECOND}", texts[0]), texts


def test_interim_results_arrive_before_the_final(stub, speech) -> None:
    audio = np.concatenate([silence(0.3), speech.say(SENTENCE), silence(0.8)])
    # Paced at twice real time, as a live client would send.
    replies = stream(stub, pcm16(audio, to_rate=16000), chunk_bytes=3200, interim=True, pace=0.5)
    kinds = [r.WhichOneof("event") for r in replies]
    assert "partial" in kinds
    assert kinds.index("partial") < kinds.index("final")
    partials = [r.partial for r in replies if r.WhichOneof("event") == "partial"]
    assert all(p.text and 0.0 <= p.stability <= 1.0 for p in partials)
    assert sounds_like(SENTENCE, finals(replies)[0])


def test_chunk_size_does_not_change_the_result(stub, speech) -> None:
    audio = pcm16(np.concatenate([silence(0.3), speech.say(FIRST), silence(0.8)]), to_rate=16000)
    texts = {size: " ".join(finals(stream(stub, audio, chunk_bytes=size))) for size in (320, 777, 3200, 32000)}
    assert len(set(texts.values())) == 1, texts
    assert sounds_like(FIRST, texts[320])


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_any_rate_mono_or_stereo_is_recognised(stub, speech, rate: int, channels: int) -> None:
    audio = np.concatenate([silence(0.3), speech.say(FIRST), silence(0.3)])
    reply = recognize_wav(stub, wav(audio, to_rate=rate, channels=channels))
    assert sounds_like(FIRST, reply.result.text), reply.result.text
    if rate in (8000, 48000):  # streaming resamples too
        texts = finals(stream(stub, pcm16(audio, to_rate=rate), rate=rate, chunk_bytes=rate // 5 * 2))
        assert sounds_like(FIRST, " ".join(texts))


def _pcm_request(
    data: bytes,
    rate: int = 16000,
    channels: int = 1,
    encoding: int = common_pb2.AUDIO_ENCODING_PCM16,
    language: str = "",
):
    return asr_pb2.RecognizeRequest(config=config(rate, channels, encoding, language=language), audio=data)


BAD_REQUESTS = [
    (
        "unknown encoding",
        _pcm_request(b"\0" * 3200, encoding=0),
        grpc.StatusCode.INVALID_ARGUMENT,
        "audio encoding AUDIO_ENCODING_UNSPECIFIED is not supported",
    ),
    (
        "missing rate",
        _pcm_request(b"\0" * 3200, rate=0),
        grpc.StatusCode.INVALID_ARGUMENT,
        "sample_rate_hz is required",
    ),
    (
        "impossible rate",
        _pcm_request(b"\0" * 3200, rate=3),
        grpc.StatusCode.INVALID_ARGUMENT,
        "sample_rate_hz 3 is impossible",
    ),
    (
        "odd bytes",
        _pcm_request(b"\0" * 3201),
        grpc.StatusCode.INVALID_ARGUMENT,
        "even number of bytes (got 3201)",
    ),
    (
        "corrupt wav",
        _pcm_request(b"RIFF\x10\0\0\0WAVEjunkjunk", encoding=common_pb2.AUDIO_ENCODING_WAV),
        grpc.StatusCode.INVALID_ARGUMENT,
        "corrupt WAV",
    ),
    (
        "not a wav",
        _pcm_request(b"ID3 this is an mp3", encoding=common_pb2.AUDIO_ENCODING_WAV),
        grpc.StatusCode.INVALID_ARGUMENT,
        "no RIFF/WAVE header",
    ),
    ("empty", _pcm_request(b""), grpc.StatusCode.INVALID_ARGUMENT, "audio is empty"),
    (
        "too long",
        _pcm_request(b"\0\0" * 8000 * (MAX_SECONDS + 1), rate=8000),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the limit is {MAX_SECONDS} s",
    ),
    (
        "over size limit",
        _pcm_request(b"\0" * (MAX_MESSAGE + 1000)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "larger than max",
    ),
    (
        "unknown language",
        _pcm_request(b"\0" * 3200, language="klingon"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "unknown language 'klingon'",
    ),
]


@pytest.mark.parametrize(("name", "request_", "code", "message"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_gets_its_status_and_the_service_keeps_serving(stub, speech, name, request_, code, message) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Recognize(request_, timeout=30)
    assert info.value.code() is code
    assert message in info.value.details()
    good = recognize_wav(stub, wav(np.concatenate([silence(0.2), speech.say(FIRST)])))
    assert sounds_like(FIRST, good.result.text)


def test_bad_streams_get_invalid_argument(stub) -> None:
    def run(*requests):
        with pytest.raises(grpc.RpcError) as info:
            list(stub.StreamingRecognize(iter(requests), timeout=30))
        return info.value

    err = run(asr_pb2.StreamingRecognizeRequest(audio=b"\0\0"))
    assert (
        err.code() is grpc.StatusCode.INVALID_ARGUMENT
        and "first StreamingRecognize message must be the config" in err.details()
    )
    err = run(asr_pb2.StreamingRecognizeRequest(config=config(0, 0, common_pb2.AUDIO_ENCODING_WAV)))
    assert "StreamingRecognize takes AUDIO_ENCODING_PCM16" in err.details()
    err = run(
        asr_pb2.StreamingRecognizeRequest(config=config()),
        asr_pb2.StreamingRecognizeRequest(audio=b"\0\0" * 160),
        asr_pb2.StreamingRecognizeRequest(config=config()),
    )
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and "only the first message may be a config" in err.details()
    err = run(asr_pb2.StreamingRecognizeRequest(config=config(turn_detection="psychic", vad_min_silence_ms=5)))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "vad_min_silence_ms 5 is not within 32-10000" in err.details() and "'psychic'" in err.details()
    err = run(asr_pb2.StreamingRecognizeRequest(config=config(rate=0)))
    assert "sample_rate_hz is required" in err.details()
    assert failure_from_error(err).traceback  # dev mode: the traceback comes along
    assert list(stub.StreamingRecognize(iter([asr_pb2.StreamingRecognizeRequest(config=config())]), timeout=30)) == []


def test_cancelling_a_long_stream_frees_the_service(stub, speech) -> None:
    one = np.concatenate([speech.say(SECOND), silence(0.6)])
    long_audio = pcm16(np.tile(one, 12), to_rate=16000)  # a dozen utterances, each a decode
    reference = recognize_wav(stub, wav(speech.say(FIRST)))
    decode_time = reference.timings.processing_seconds

    first_final = threading.Event()

    def requests():
        yield asr_pb2.StreamingRecognizeRequest(config=config())
        for i in range(0, len(long_audio), 32000):
            yield asr_pb2.StreamingRecognizeRequest(audio=long_audio[i : i + 32000])

    call = stub.StreamingRecognize(requests(), timeout=120)

    def consume() -> None:
        try:
            for reply in call:
                if reply.WhichOneof("event") == "final":
                    first_final.set()
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=consume)
    reader.start()
    assert first_final.wait(60)
    call.cancel()
    reader.join(10)
    after = recognize_wav(stub, wav(speech.say(FIRST)))
    assert sounds_like(FIRST, after.result.text)
    # Waited at most for the decode in flight, not for the other ten utterances.
    assert after.timings.queue_seconds < 3 * decode_time + 0.5


def test_transcribe_cli(asr_address, speech, tmp_path) -> None:
    path = tmp_path / "q.wav"
    path.write_bytes(wav(np.concatenate([silence(0.3), speech.say(FIRST), silence(0.5)])))

    def transcribe(audio: Path, *flags: str) -> subprocess.CompletedProcess[str]:
        argv = voxstack_command("transcribe", str(audio), "--addr", asr_address, *flags)
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    plain = transcribe(path)
    assert plain.returncode == 0 and sounds_like(FIRST, plain.stdout)
    streamed = transcribe(path, "--stream")
    assert streamed.returncode == 0 and sounds_like(FIRST, streamed.stdout)
    as_json = transcribe(path, "--json")
    assert '"words"' in as_json.stdout and '"timings"' in as_json.stdout
    stream_json = transcribe(path, "--stream", "--json")
    assert '"speechStarted"' in stream_json.stdout and '"final"' in stream_json.stdout
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    failed = transcribe(bad)
    assert failed.returncode == 1
    assert "INVALID_ARGUMENT: corrupt WAV: no RIFF/WAVE header" in failed.stderr


def test_missing_model_fails_at_start_with_the_fix(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSTACK_")}
    env["VOXSTACK_MODELS_DIR"] = str(tmp_path)
    result = subprocess.run(
        voxstack_command("serve", "asr", "--port", "0", "--mode", "prod"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == EXIT_STARTUP
    assert "run `voxstack models pull asr`" in result.stderr
    assert "Traceback" not in result.stderr
