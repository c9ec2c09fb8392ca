"""The OpenAI-compatible API (issue 17), with the official `openai` SDK as the client against a real stack."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator

import av
import httpx
import numpy as np
import openai
import pytest
from stack import Stack

from voxstack.testing.speech import wer as word_error_rate

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def stack(real_stack: Stack) -> Stack:
    return real_stack


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.url}/v1", api_key="unused", max_retries=0, timeout=120) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def llm_id(client: openai.OpenAI) -> str:
    return next(m.id for m in client.models.list() if m.id.endswith(".Q4_1"))


def test_models_lists_what_is_served_and_unknown_ones_are_404(client: openai.OpenAI, llm_id: str) -> None:
    ids = {m.id for m in client.models.list()}
    assert ids == {"whisper-base", llm_id, "piper"}
    assert client.models.retrieve("whisper-1").id == "whisper-1"  # OpenAI's name, accepted as an alias
    assert client.models.retrieve(llm_id).owned_by == "voxstack"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-nothing")
    assert missing.value.body["type"] == "not_found_error"  # type: ignore[index]


def test_a_chat_completion_whole_and_streamed(client: openai.OpenAI, llm_id: str) -> None:
    whole = client.chat.completions.create(model=llm_id, messages=QUESTION, temperature=0, max_tokens=24, seed=1)
    choice = whole.choices[0]
    assert whole.object == "chat.completion" and whole.id.startswith("chatcmpl-") and whole.model == llm_id
    assert choice.message.role == "assistant" and "paris" in (choice.message.content or "").lower()
    assert choice.finish_reason in ("stop", "length")
    assert whole.usage is not None and whole.usage.prompt_tokens > 5 and whole.usage.completion_tokens > 0
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens

    chunks = list(
        client.chat.completions.create(
            model=llm_id,
            messages=QUESTION,
            temperature=0,
            max_tokens=24,
            seed=1,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([p for p in pieces if p]) > 1  # streamed, not one block
    assert "".join(pieces) == choice.message.content  # temperature 0: the same reply
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_max_tokens_stop_and_a_system_message_are_honoured(client: openai.OpenAI, llm_id: str) -> None:
    short = client.chat.completions.create(model=llm_id, messages=QUESTION, temperature=0, max_completion_tokens=2)
    assert short.choices[0].finish_reason == "length" and short.usage is not None
    assert short.usage.completion_tokens <= 2
    messages = [{"role": "system", "content": "You answer questions about geography."}, *QUESTION]
    free = client.chat.completions.create(model=llm_id, messages=messages, temperature=0, max_tokens=24)
    assert "Paris" in (free.choices[0].message.content or "")
    stopped = client.chat.completions.create(
        model=llm_id, messages=messages, temperature=0, max_tokens=24, stop=["Paris"], user="someone"
    )
    text = stopped.choices[0].message.content or ""
    assert "Paris" not in text and free.choices[0].message.content.startswith(text)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"model": "gpt-nothing"}, openai.NotFoundError),
        ({"n": 2}, openai.BadRequestError),
        ({"messages": []}, openai.BadRequestError),
        ({"messages": [{"role": "assistant", "content": "Hi."}]}, openai.BadRequestError),
        ({"messages": [{"role": "wizard", "content": "Hi."}]}, openai.BadRequestError),
        ({"temperature": 3}, openai.BadRequestError),
    ],
)
def test_bad_requests_raise_the_sdks_typed_errors(client: openai.OpenAI, llm_id: str, arguments, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as raised:
        client.chat.completions.create(**({"model": llm_id, "messages": QUESTION} | arguments))
    body = raised.value.body
    assert isinstance(body, dict) and body["message"] and body["type"]


SENTENCES = "The weather is lovely today. We should walk to the park after lunch."


def _decoded_seconds(data: bytes, fmt: str) -> tuple[float, np.ndarray, int]:
    """(seconds, mono float samples, rate) of encoded speech, decoded with PyAV."""
    if fmt == "pcm":
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
        return samples.size / 24000, samples, 24000
    with av.open(io.BytesIO(data)) as container:
        rate = container.streams.audio[0].rate
        frames = [f.to_ndarray().astype(np.float32).reshape(-1) for f in container.decode(audio=0)]
    samples = np.concatenate(frames)
    if np.abs(samples).max() > 2:  # integer samples
        samples = samples / 32768
    return samples.size / rate, samples, rate


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_speech_in_every_format_decodes_and_says_the_input(stack: Stack, client: openai.OpenAI, fmt: str) -> None:
    from voxstack.audio import float_to_pcm16, resample, wav_bytes

    response = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCES, response_format=fmt)
    seconds, samples, rate = _decoded_seconds(response.content, fmt)
    assert 3.0 < seconds < 12.0, seconds
    heard = httpx.post(
        f"{stack.url}/v1/transcribe",
        content=wav_bytes(float_to_pcm16(resample(samples, rate, 16000)), 16000),
        headers={"Content-Type": "audio/wav"},
        timeout=120,
    ).json()["text"]
    assert word_error_rate(SENTENCES, heard) < 0.25, heard


def test_speech_streams_sentence_by_sentence_and_speed_shortens_it(stack: Stack, client: openai.OpenAI) -> None:
    arrivals = []
    with client.audio.speech.with_streaming_response.create(
        model="piper", voice="alloy", input=SENTENCES, response_format="wav"
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        for piece in response.iter_bytes():
            arrivals.append((time.perf_counter(), len(piece)))
    assert len(arrivals) >= 2 and arrivals[-1][0] - arrivals[0][0] > 0.01  # the first sentence came first
    normal = _decoded_seconds(b"".join(_wav_pieces(client, 1.0)), "wav")[0]
    fast = _decoded_seconds(b"".join(_wav_pieces(client, 1.5)), "wav")[0]
    assert fast < 0.85 * normal, (fast, normal)


def _wav_pieces(client: openai.OpenAI, speed: float) -> list[bytes]:
    response = client.audio.speech.create(
        model="tts-1", voice="nova", input=SENTENCES, response_format="wav", speed=speed
    )
    return [response.content]


def test_speech_as_server_sent_events(stack: Stack) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": SENTENCES, "response_format": "pcm", "stream_format": "sse"}
    with httpx.stream("POST", f"{stack.url}/v1/audio/speech", json=body, timeout=120) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) >= 2 and events[-1]["type"] == "speech.audio.done"
    pcm = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert 3.0 < len(pcm) / 2 / 24000 < 12.0


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"model": "gpt-nothing"}, openai.NotFoundError),
        ({"voice": "no-such-voice"}, openai.BadRequestError),
        ({"response_format": "ogg"}, openai.BadRequestError),
        ({"speed": 9}, openai.BadRequestError),
        ({"input": ""}, openai.BadRequestError),
    ],
)
def test_bad_speech_requests_raise_the_sdks_typed_errors(client: openai.OpenAI, arguments, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        client.audio.speech.create(**({"model": "tts-1", "voice": "alloy", "input": "Hello."} | arguments))


QUESTION_SPOKEN = "What is the weather like in London in the spring? I would like to visit."


@pytest.fixture(scope="module")
def recording(speech) -> bytes:
    from voxstack.testing.speech import silence, wav

    return wav(np.concatenate([silence(0.3), speech.say(QUESTION_SPOKEN), silence(0.5)]))


def _reencode(wav_data: bytes, container: str, codec: str) -> bytes:
    """The recording in another container and codec (as a phone or browser would record it)."""
    out = io.BytesIO()
    with av.open(io.BytesIO(wav_data)) as source, av.open(out, mode="w", format=container) as target:
        rate = 48000 if codec == "libopus" else source.streams.audio[0].rate
        stream = target.add_stream(codec, rate=rate)
        resampler = av.AudioResampler(format=stream.format.name if stream.format else "s16", layout="mono", rate=rate)
        for frame in source.decode(audio=0):
            for piece in resampler.resample(frame):
                for packet in stream.encode(piece):
                    target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "container", "codec"),
    [
        ("q.mp3", "mp3", "libmp3lame"),
        ("q.ogg", "ogg", "libopus"),
        ("q.flac", "flac", "flac"),
        ("q.webm", "webm", "libopus"),
        ("q.m4a", "ipod", "aac"),
    ],
)
def test_transcriptions_of_common_containers(client: openai.OpenAI, recording: bytes, name, container, codec) -> None:  # type: ignore[no-untyped-def]
    data = _reencode(recording, container, codec)
    result = client.audio.transcriptions.create(model="whisper-1", file=(name, data))
    assert word_error_rate(QUESTION_SPOKEN, result.text) < 0.2, result.text


def test_transcription_formats(client: openai.OpenAI, recording: bytes) -> None:
    plain = client.audio.transcriptions.create(model="whisper-base", file=("q.wav", recording), language="en")
    assert word_error_rate(QUESTION_SPOKEN, plain.text) < 0.2, plain.text
    text = client.audio.transcriptions.create(model="whisper-1", file=("q.wav", recording), response_format="text")
    assert str(text).strip() == plain.text
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=("q.wav", recording),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.language == "en" and 3 < verbose.duration < 10 and verbose.text == plain.text
    segments, words = verbose.segments or [], verbose.words or []
    assert len(segments) == 2 and segments[0].text.endswith("?")  # two sentences
    assert all(0 <= s.start < s.end <= verbose.duration + 0.1 for s in segments)
    assert segments[0].end <= segments[1].start
    assert len(words) >= 10 and all(w.start <= w.end for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    srt = str(client.audio.transcriptions.create(model="whisper-1", file=("q.wav", recording), response_format="srt"))
    assert srt.startswith("1\n00:00:0") and " --> " in srt and "\n2\n" in srt
    vtt = str(client.audio.transcriptions.create(model="whisper-1", file=("q.wav", recording), response_format="vtt"))
    assert vtt.startswith("WEBVTT\n\n00:00:0") and vtt.count(" --> ") == 2


def test_streamed_transcription_deltas_add_up_to_the_text(client: openai.OpenAI, recording: bytes) -> None:
    events = list(client.audio.transcriptions.create(model="whisper-1", file=("q.wav", recording), stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    done = [e for e in events if e.type == "transcript.text.done"]
    assert deltas and len(done) == 1 and "".join(deltas) == done[0].text
    assert word_error_rate(QUESTION_SPOKEN, done[0].text) < 0.2


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"model": "gpt-nothing"}, openai.NotFoundError),
        ({"file": ("x.mp3", b"this is not audio at all" * 40)}, openai.BadRequestError),
        ({"file": ("x.wav", b"")}, openai.BadRequestError),
        ({"response_format": "docx"}, openai.BadRequestError),
    ],
)
def test_bad_transcription_requests_raise_the_sdks_typed_errors(client, recording, arguments, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as raised:
        client.audio.transcriptions.create(**({"model": "whisper-1", "file": ("q.wav", recording)} | arguments))
    assert raised.value.body["message"]  # type: ignore[index]
