"""The Wyoming servers (issue 17), with the `wyoming` package's own client against real asr and tts services.

The first two tests replay what wyoming-faster-whisper's and wyoming-piper's
own tests send and expect (over stdio and TCP), so Home Assistant and other
Wyoming clients need no bridge.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import wave
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from stack import Stack
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop, wav_to_chunks
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from voxstack.testing.processes import child_env, eventually, free_port, voxstack_command
from voxstack.testing.speech import SpeechMaker, pcm16, silence, sounds_like, wav, wer

pytestmark = pytest.mark.slow

VOICE = "en_US-joe-medium"
LAMP = "Turn on the living room lamp."
TIMEOUT = 60
MAX_AUDIO_SECONDS = 12
MAX_CONNECTIONS = 6


def _listening(port: int) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError as exc:
        raise AssertionError(f"port {port}: {exc}") from None


class Servers:
    """``voxstack wyoming`` on two free TCP ports, in front of the stack's asr and tts."""

    def __init__(self, stack: Stack, log: Path) -> None:
        self.asr_port, self.tts_port = free_port(), free_port()
        self.log = log
        env = stack.env | {
            "VOXSTACK_ASR__MAX_AUDIO_SECONDS": str(MAX_AUDIO_SECONDS),
            "VOXSTACK_WYOMING__MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            "VOXSTACK_WYOMING__MAX_EVENT_BYTES": str(256 * 1024),
            # An asr the test kills and starts again is waited for, as an orchestrator's restart would be.
            "VOXSTACK_CORE__RESTART_WAIT_SECONDS": "60",
        }
        command = voxstack_command(
            "wyoming", "--asr", f"tcp://127.0.0.1:{self.asr_port}", "--tts", f"tcp://127.0.0.1:{self.tts_port}"
        )
        self.proc = subprocess.Popen(command, env=child_env(env), stderr=log.open("w"))
        for port in (self.asr_port, self.tts_port):
            eventually(lambda p=port: _listening(p), "the wyoming servers", timeout=60)  # type: ignore[misc]

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(30)


@pytest.fixture(scope="module")
def stack(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(models_dir, tmp_path_factory.mktemp("wyoming"))
    for name in ("asr", "tts"):
        running.start(name)
    for name in ("asr", "tts"):
        running.wait(name)
    yield running
    running.down()


@pytest.fixture(scope="module")
def servers(stack: Stack) -> Iterator[Servers]:
    running = Servers(stack, stack.logs / "wyoming.log")
    yield running
    assert running.stop() == 0
    log = running.log.read_text()
    assert "Traceback" not in log and '"level": "ERROR"' not in log, log[-3000:]


def _letters(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower()).strip()


def _wav_file(speech: SpeechMaker, text: str, rate: int = 16_000) -> wave.Wave_read:
    return wave.open(BytesIO(wav(speech.say(text), to_rate=rate)), "rb")


async def _next(client: AsyncTcpClient) -> Event:
    event = await asyncio.wait_for(client.read_event(), TIMEOUT)
    assert event is not None, "the server closed the connection"
    return event


async def _until(client: AsyncTcpClient, kind: str) -> list[Event]:
    """Every event up to and including the first of type ``kind``."""
    seen = [await _next(client)]
    while seen[-1].type != kind:
        assert not Error.is_type(seen[-1].type), seen[-1].data
        seen.append(await _next(client))
    return seen


async def _error(client: AsyncTcpClient) -> Error:
    """The next error event; only a transcript-start (of the request that failed) may come before it."""
    while TranscriptStart.is_type((event := await _next(client)).type):
        pass
    assert Error.is_type(event.type), event
    return Error.from_event(event)


async def _send_audio(
    client: AsyncTcpClient, pcm: bytes, rate: int = 16_000, width: int = 2, channels: int = 1
) -> None:
    step = 1024 * width * channels
    for start in range(0, len(pcm), step):
        await client.write_event(AudioChunk(rate, width, channels, pcm[start : start + step]).event())


async def _transcribe(port: int, pcm: bytes, **fmt: int) -> list[Event]:
    rate, width, channels = fmt.get("rate", 16_000), fmt.get("width", 2), fmt.get("channels", 1)
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate, width, channels).event())
        await _send_audio(client, pcm, rate, width, channels)
        await client.write_event(AudioStop().event())
        return await _until(client, TranscriptStop().event().type)


async def _synthesize(port: int, text: str, voice: SynthesizeVoice | None = None) -> tuple[AudioStart, bytes]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text, voice=voice).event())
        events = await _until(client, "audio-stop")
    start = AudioStart.from_event(events[0])
    return start, b"".join(AudioChunk.from_event(e).audio for e in events if AudioChunk.is_type(e.type))


def _hear(asr, pcm: bytes, rate: int) -> str:  # type: ignore[no-untyped-def]
    from voxstack.audio import resample

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    return asr.transcribe(__import__("threading").Event(), resample(samples, rate, 16_000), "en").text


# --- the sequences of wyoming-faster-whisper's and wyoming-piper's own tests ------------------------


async def test_the_wyoming_faster_whisper_sequence_over_stdio(stack: Stack, speech: SpeechMaker) -> None:
    proc = await asyncio.create_subprocess_exec(
        *voxstack_command("wyoming", "--asr", "stdio://", "--tts", ""),
        env=child_env(stack.env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    await async_write_event(Describe().event(), proc.stdin)
    while True:
        event = await asyncio.wait_for(async_read_event(proc.stdout), TIMEOUT)
        assert event is not None
        if Info.is_type(event.type):
            info = Info.from_event(event)
            break
    assert len(info.asr) == 1 and not info.tts, "Expected one asr service"
    model = info.asr[0].models[0]
    assert model.name == "whisper-base" and {"en", "de", "fr"} <= set(model.languages or [])
    assert info.asr[0].supports_transcript_streaming

    await async_write_event(Transcribe().event(), proc.stdin)
    with _wav_file(speech, LAMP) as example_wav:
        await async_write_event(
            AudioStart(example_wav.getframerate(), example_wav.getsampwidth(), example_wav.getnchannels()).event(),
            proc.stdin,
        )
        for chunk in wav_to_chunks(example_wav, 1024):
            await async_write_event(chunk.event(), proc.stdin)
    await async_write_event(AudioStop().event(), proc.stdin)
    while True:
        event = await asyncio.wait_for(async_read_event(proc.stdout), TIMEOUT)
        assert event is not None
        if Transcript.is_type(event.type):
            assert _letters(Transcript.from_event(event).text) == "turn on the living room lamp"
            break

    proc.stdin.close()  # the end of stdin ends the server, as wyoming-faster-whisper's test expects
    _, stderr = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, stderr.decode()


async def test_the_wyoming_piper_sequence_over_tcp(servers: Servers, asr) -> None:  # type: ignore[no-untyped-def]
    async with AsyncTcpClient("127.0.0.1", servers.tts_port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await _next(client))
        assert len(info.tts) == 1, "Expected one tts service"
        tts = info.tts[0]
        assert tts.supports_synthesize_streaming and len(tts.voices) > 0
        voice = next((v for v in tts.voices if v.name == VOICE), None)
        assert voice is not None and voice.languages == ["en_US"]

        await client.write_event(Synthesize("This is a test.", voice=SynthesizeVoice(VOICE)).event())
        event = await _next(client)
        assert AudioStart.is_type(event.type)  # nothing before the audio
        start = AudioStart.from_event(event)
        assert (start.rate, start.width, start.channels) == (22_050, 2, 1)
        audio = b""
        while not AudioStop.is_type((event := await _next(client)).type):
            assert AudioChunk.is_type(event.type), event.type
            chunk = AudioChunk.from_event(event)
            assert (chunk.rate, chunk.width, chunk.channels) == (start.rate, start.width, start.channels)
            audio += chunk.audio
    seconds = len(audio) / 2 / start.rate
    assert 0.6 < seconds < 2.5  # "This is a test." (wyoming-piper's check: within 20 % of a recording of it)
    assert _letters(_hear(asr, audio, start.rate)) == "this is a test"


# --- speech to text --------------------------------------------------------------------------------


def _encode(pcm16_mono: bytes, width: int, channels: int) -> bytes:
    """16-bit mono as ``width``-byte samples (8-bit unsigned, as WAV has it) in ``channels`` channels."""
    samples = np.frombuffer(pcm16_mono, dtype="<i2").astype(np.int32)
    if width == 1:
        out = ((samples >> 8) + 128).astype(np.uint8)
    elif width == 4:
        out = (samples << 16).astype("<i4")
    else:
        out = samples.astype("<i2")
    return np.repeat(out[:, None], channels, axis=1).tobytes()


@pytest.mark.parametrize(("rate", "width", "channels"), [(16_000, 2, 1), (44_100, 4, 2), (22_050, 1, 1), (8_000, 2, 2)])
async def test_audio_of_any_rate_width_and_channels_is_transcribed(
    servers: Servers, speech: SpeechMaker, rate: int, width: int, channels: int
) -> None:
    pcm = _encode(pcm16(speech.say(LAMP), to_rate=rate), width, channels)
    events = await _transcribe(servers.asr_port, pcm, rate=rate, width=width, channels=channels)
    transcript = Transcript.from_event(next(e for e in events if Transcript.is_type(e.type)))
    assert _letters(transcript.text) == "turn on the living room lamp", transcript.text
    assert transcript.language == "en"


async def test_the_transcript_streams_while_the_audio_still_arrives(servers: Servers, speech: SpeechMaker) -> None:
    first, second = "The kitchen light is on.", "Please close the garage door."
    async with AsyncTcpClient("127.0.0.1", servers.asr_port) as client:
        await client.write_event(Transcribe().event())
        await client.write_event(AudioStart(16_000, 2, 1).event())
        await _send_audio(client, pcm16(np.concatenate([speech.say(first), silence(1.2)]), to_rate=16_000))
        # The first sentence comes back before the rest of the audio is even sent.
        early = await _until(client, "transcript-chunk")
        assert [e.type for e in early] == ["transcript-start", "transcript-chunk"]
        await _send_audio(client, pcm16(np.concatenate([speech.say(second), silence(0.3)]), to_rate=16_000))
        await client.write_event(AudioStop().event())
        rest = await _until(client, "transcript-stop")
    chunks = [TranscriptChunk.from_event(e).text for e in early + rest if TranscriptChunk.is_type(e.type)]
    assert len(chunks) == 2 and TranscriptStart.is_type(early[0].type)
    assert [e.type for e in rest[-2:]] == ["transcript", "transcript-stop"]
    whole = Transcript.from_event(rest[-2]).text
    assert "".join(chunks) == whole  # the chunks are the transcript, piece by piece
    assert wer(f"{first} {second}", whole) <= 0.1, whole


async def test_an_empty_request_and_a_ping_are_answered(servers: Servers) -> None:
    async with AsyncTcpClient("127.0.0.1", servers.asr_port) as client:
        await client.write_event(Ping(text="hello").event())
        assert Pong.from_event(await _next(client)).text == "hello"
        await client.write_event(AudioStart(16_000, 2, 1).event())
        await client.write_event(AudioStop().event())  # no audio: an empty transcript, as wyoming-faster-whisper
        assert Transcript.from_event(await _next(client)).text == ""


# --- text to speech --------------------------------------------------------------------------------


async def test_streamed_text_is_spoken_sentence_by_sentence(servers: Servers, asr) -> None:  # type: ignore[no-untyped-def]
    pieces = ["The weather is lov", "ely today. We should", " walk to the park", " after lunch."]
    async with AsyncTcpClient("127.0.0.1", servers.tts_port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(VOICE)).event())
        for piece in pieces[:2]:
            await client.write_event(SynthesizeChunk(piece).event())
        # The first sentence is spoken before the text stream ends.
        first = await _until(client, "audio-stop")
        for piece in pieces[2:]:
            await client.write_event(SynthesizeChunk(piece).event())
        await client.write_event(Synthesize("".join(pieces), voice=SynthesizeVoice(VOICE)).event())  # ignored
        await client.write_event(SynthesizeStop().event())
        rest = await _until(client, SynthesizeStopped().event().type)
    kinds = [e.type for e in first + rest if not AudioChunk.is_type(e.type)]
    assert kinds == ["audio-start", "audio-stop", "audio-start", "audio-stop", "synthesize-stopped"]
    audio = b"".join(AudioChunk.from_event(e).audio for e in first + rest if AudioChunk.is_type(e.type))
    heard = _hear(asr, audio, 22_050)
    assert sounds_like("".join(pieces), heard), heard


async def test_voices_and_speakers_are_chosen_by_name(servers: Servers) -> None:
    start, audio = await _synthesize(servers.tts_port, "Hello.", SynthesizeVoice(VOICE, speaker="0"))
    assert start.rate == 22_050 and len(audio) > 10_000
    async with AsyncTcpClient("127.0.0.1", servers.tts_port) as client:
        await client.write_event(Synthesize("Hello.", voice=SynthesizeVoice("en_GB-nobody")).event())
        error = Error.from_event(await _next(client))
        assert error.code == "UNKNOWN_VOICE" and VOICE in error.text
        await client.write_event(Synthesize("Hello.", voice=SynthesizeVoice(VOICE, speaker="alice")).event())
        error = Error.from_event(await _next(client))
        assert error.code == "UNKNOWN_SPEAKER" and "one speaker" in error.text
        await client.write_event(Synthesize("Still here.").event())  # the default voice, same connection
        assert AudioStart.is_type((await _next(client)).type)


def test_a_speaker_is_found_by_name_or_number() -> None:
    from voxstack.core.wyoming.tts import speaker_id
    from voxstack.errors import InvalidInput
    from voxstack.v1 import tts_pb2

    voice = tts_pb2.Voice(name="multi", num_speakers=3, speakers=["alice", "bob", "carol"])
    assert [speaker_id(voice, s) for s in ("bob", "2", "alice")] == [1, 2, 0]
    for bad in ("3", "dave", "-1"):
        with pytest.raises(InvalidInput, match="alice, bob, carol"):
            speaker_id(voice, bad)


# --- many clients, clients that leave, bad input -------------------------------------------------


async def test_many_clients_at_once(servers: Servers, speech: SpeechMaker, asr) -> None:  # type: ignore[no-untyped-def]
    pcm = pcm16(speech.say(LAMP), to_rate=16_000)
    texts = [f"Number {n} is ready." for n in ("one", "two", "three")]
    results = await asyncio.gather(
        *(_transcribe(servers.asr_port, pcm) for _ in range(3)),
        *(_synthesize(servers.tts_port, text) for text in texts),
    )
    for events in results[:3]:
        assert _letters(Transcript.from_event(events[-2]).text) == "turn on the living room lamp"  # type: ignore[arg-type]
    for text, (start, audio) in zip(texts, results[3:], strict=True):
        assert wer(text, _hear(asr, audio, start.rate)) <= 0.25  # type: ignore[union-attr, arg-type]


async def test_clients_that_leave_midway_do_not_disturb_the_server(servers: Servers, speech: SpeechMaker) -> None:
    pcm = pcm16(speech.say(LAMP), to_rate=16_000)
    async with AsyncTcpClient("127.0.0.1", servers.asr_port) as client:
        await client.write_event(AudioStart(16_000, 2, 1).event())
        await _send_audio(client, pcm[: len(pcm) // 2])  # and gone, with the asr stream open
    async with AsyncTcpClient("127.0.0.1", servers.tts_port) as client:
        await client.write_event(Synthesize("A long reply. " * 20).event())
        assert AudioStart.is_type((await _next(client)).type)  # and gone, mid-speech
    events = await _transcribe(servers.asr_port, pcm)
    assert _letters(Transcript.from_event(events[-2]).text) == "turn on the living room lamp"


async def _raw(port: int, data: bytes) -> list[Event]:
    """Send raw bytes; every event until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    writer.write_eof()  # what was sent is all there is
    await writer.drain()
    events = []
    while (event := await asyncio.wait_for(async_read_event(reader), TIMEOUT)) is not None:
        events.append(event)
    writer.close()
    return events


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"this is not json\n", "BAD_EVENT"),
        (b'["a list"]\n', "BAD_EVENT"),
        (b'{"data": {}}\n', "BAD_EVENT"),
        (b'{"type": "audio-chunk", "payload_length": -5}\n', "BAD_EVENT"),
        (b'{"type": "audio-chunk", "payload_length": 1000000000}\n', "EVENT_TOO_LARGE"),
        (b'{"type": "describe", "data_length": 3}\nabc', "BAD_EVENT"),
        (b'{"type": "x", "data": "' + b"a" * 70_000 + b'"}\n', "EVENT_TOO_LARGE"),
        (b'{"type": "audio-chunk", "payload_length": 10}\nshort', "BAD_EVENT"),
        (b'{"type": "describe", "data": ' + b"[" * 20_000 + b"]" * 20_000 + b"}\n", "BAD_EVENT"),  # too deep
    ],
)
async def test_broken_framing_gets_an_error_and_the_connection_closes(servers: Servers, data: bytes, code: str) -> None:
    events = await _raw(servers.asr_port, data)
    assert [e.type for e in events] == ["error"] and Error.from_event(events[0]).code == code


async def test_a_lone_surrogate_in_text_to_speak_is_an_error_event_and_the_connection_goes_on(servers: Servers) -> None:
    """JSON can carry an unpaired surrogate (as an escape), UTF-8 and so gRPC cannot: it raised
    UnicodeEncodeError, answered INTERNAL and dropped the connection. The client library will not send one."""
    lone = b'{"type": "synthesize", "data": {"text": "a lone \\udc00 surrogate"}}\n'
    events = await _raw(servers.tts_port, lone + b'{"type": "ping"}\n')
    assert [e.type for e in events] == ["error", "pong"], events
    assert Error.from_event(events[0]).code == "BAD_EVENT"


async def test_bad_requests_get_an_error_and_the_connection_stays_usable(servers: Servers, speech: SpeechMaker) -> None:
    pcm = pcm16(speech.say(LAMP), to_rate=16_000)
    async with AsyncTcpClient("127.0.0.1", servers.asr_port) as client:
        for chunk, code in [
            (AudioChunk(16_000, 3, 1, b"\0" * 30).event(), "BAD_AUDIO_FORMAT"),
            (AudioChunk(16_000, 2, 1, b"\0" * 31).event(), "BAD_AUDIO_FORMAT"),
            (AudioChunk(0, 2, 1, b"\0" * 32).event(), "BAD_SAMPLE_RATE"),
            (AudioChunk(16_000, 2, 6, b"\0" * 24).event(), "BAD_AUDIO_FORMAT"),
            (Event("audio-chunk", {"rate": "fast"}, b"\0\0"), "BAD_AUDIO_FORMAT"),
        ]:
            await client.write_event(AudioStart(16_000, 2, 1).event())
            await client.write_event(chunk)
            assert (await _error(client)).code == code
            await client.write_event(AudioStop().event())  # ends the failed request: nothing more comes
        await client.write_event(Transcribe(name="whisper-huge").event())
        assert (await _error(client)).code == "UNKNOWN_MODEL"
        # A language the asr does not know is refused when the audio reaches it.
        await client.write_event(Transcribe(language="xx").event())
        await client.write_event(AudioChunk(16_000, 2, 1, pcm[:3200]).event())
        await client.write_event(AudioStop().event())
        error = await _error(client)
        assert error.code == "BAD_LANGUAGE" and "xx" in error.text
        # Longer than the limit: refused as soon as it is.
        await client.write_event(AudioStart(16_000, 2, 1).event())
        await _send_audio(client, pcm16(silence(MAX_AUDIO_SECONDS + 1, 16_000), 16_000))
        assert (await _error(client)).code == "AUDIO_TOO_LONG"
        await client.write_event(AudioStop().event())
        # And the connection still transcribes.
        await client.write_event(AudioStart(16_000, 2, 1).event())
        await _send_audio(client, pcm)
        await client.write_event(AudioStop().event())
        events = await _until(client, "transcript-stop")
        assert _letters(Transcript.from_event(events[-2]).text) == "turn on the living room lamp"

    async with AsyncTcpClient("127.0.0.1", servers.tts_port) as client:
        for bad, code in [
            (SynthesizeChunk("out of order"), "UNEXPECTED_EVENT"),
            (SynthesizeStop(), "UNEXPECTED_EVENT"),
            (Event("synthesize", {"text": 42}), "BAD_EVENT"),
            (Event("synthesize", {}), "BAD_EVENT"),
            (Synthesize("   "), "EMPTY_TEXT"),
            (Synthesize("word " * 2000), "TEXT_TOO_LONG"),
        ]:
            await client.write_event(bad if isinstance(bad, Event) else bad.event())
            error = Error.from_event(await _next(client))
            assert error.code == code, error
        await client.write_event(Synthesize("Fine.").event())
        assert AudioStart.is_type((await _next(client)).type)


async def _served_clients(port: int, count: int) -> list[AsyncTcpClient]:
    """``count`` open connections, each answered (AssertionError, all closed, if one is refused)."""
    clients = [AsyncTcpClient("127.0.0.1", port) for _ in range(count)]
    try:
        for client in clients:
            await client.connect()
            await client.write_event(Ping().event())
            assert Pong.is_type((await _next(client)).type)
    except BaseException:
        for client in clients:
            await client.disconnect()
        raise
    return clients


async def test_connections_over_the_cap_are_refused_and_the_rest_served(servers: Servers) -> None:
    # Earlier tests' connections may still be closing on the server: wait until the cap's worth is served.
    clients = await eventually_async(lambda: _served_clients(servers.tts_port, MAX_CONNECTIONS))
    try:
        events = await _raw(servers.tts_port, b"")
        assert [Error.from_event(e).code for e in events] == ["TOO_MANY_CONNECTIONS"]
    finally:
        for client in clients:
            await client.disconnect()
    await eventually_async(lambda: _synthesize(servers.tts_port, "Room again."))


async def eventually_async(make, attempts: int = 20):  # type: ignore[no-untyped-def]
    for attempt in range(attempts):
        try:
            return await make()
        except (AssertionError, ConnectionError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.1)


async def test_an_asr_killed_mid_speech_fails_that_request_by_name_and_the_next_is_heard(
    stack: Stack, servers: Servers, speech: SpeechMaker
) -> None:
    # Last in the module: it kills the module's asr (and starts it again).
    words = "Turn on the living room lamp and then close the kitchen blinds please."
    pcm = pcm16(np.concatenate([speech.say(words), silence(1.0)]), to_rate=16_000)
    step = 2048  # 64 ms of 16-bit mono at 16 kHz
    async with AsyncTcpClient("127.0.0.1", servers.asr_port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(16_000, 2, 1).event())
        for start in range(0, len(pcm), step):
            if start <= 64_000 < start + step:  # two seconds in: the asr is in the middle of the speech
                stack.procs["asr"].send_signal(signal.SIGKILL)
                stack.procs["asr"].wait(30)
                stack.start("asr")
            await client.write_event(AudioChunk(16_000, 2, 1, pcm[start : start + step]).event())
            await asyncio.sleep(0.064)
        await client.write_event(AudioStop().event())
        while not Error.is_type((event := await _next(client)).type):
            assert event.type in ("transcript-start", "transcript-chunk"), event
        assert Error.from_event(event).code == "ASR_RESTARTED", event
        # No transcript of half the words follows: the request failed as a whole.
        await client.write_event(Ping().event())
        assert Pong.is_type((await _next(client)).type)
    stack.wait("asr")
    events = await _transcribe(
        servers.asr_port, pcm16(np.concatenate([speech.say(LAMP), silence(1.0)]), to_rate=16_000)
    )
    transcript = Transcript.from_event(next(e for e in events if Transcript.is_type(e.type)))
    assert sounds_like(LAMP, transcript.text), transcript.text
    assert "asr stream broke" in servers.log.read_text()


def test_settings_and_command_line_refuse_what_cannot_work(tmp_path: Path) -> None:
    bad = subprocess.run(
        voxstack_command("wyoming", "--asr", "http://x:1"), env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "VOXSTACK_WYOMING__ASR_URI" in bad.stderr
    off = subprocess.run(
        voxstack_command("wyoming", "--asr", "", "--tts", ""),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert off.returncode == 1 and "both servers are off" in off.stderr
