"""The Wyoming speech-to-text server: ``transcribe`` + audio in, ``transcript`` out, streamed as it is decoded.

Audio goes to the asr's streaming recognition while it arrives, so most of the
decoding is done when ``audio-stop`` comes. Every request gets the streaming
sequence (``transcript-start``, a ``transcript-chunk`` per utterance the asr
finalises, then at ``audio-stop`` the whole ``transcript`` and
``transcript-stop``); clients that know only ``transcript`` skip the rest, as
the protocol intends. Audio of any rate, sample width (1, 2 or 4 bytes) and
channel count (1 or 2) is converted to 16 kHz mono 16-bit with the ``wyoming``
package's converter. Like wyoming-faster-whisper, audio without an
``audio-start`` starts a request and a stop without audio answers an empty
transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe

from voxstack.audio import check_rate
from voxstack.codes import ErrorCode
from voxstack.core.clients import Backends, StageError
from voxstack.core.wyoming.info import asr_info
from voxstack.core.wyoming.protocol import Handler, parse
from voxstack.errors import InvalidInput, TooLarge
from voxstack.v1 import asr_pb2, common_pb2

logger = logging.getLogger(__name__)

RATE = 16_000
PCM16 = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=RATE, channels=1)
# Converted audio waiting for the asr; a full queue stops reading from the client.
QUEUE_CHUNKS = 64


def checked_chunk(event: Event) -> AudioChunk:
    """An audio-chunk whose format the converter can handle, or InvalidInput naming the field."""
    data = event.data
    for field in ("rate", "width", "channels"):
        value = data.get(field)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(
                f"audio-chunk needs an integer {field}, not {value!r}"[:200], reason=ErrorCode.BAD_AUDIO_FORMAT
            )
    check_rate(data["rate"], "audio-chunk rate")
    if data["width"] not in (1, 2, 4):
        raise InvalidInput(
            f"audio-chunk width {data['width']} is not 1, 2 or 4 bytes", reason=ErrorCode.BAD_AUDIO_FORMAT
        )
    if data["channels"] not in (1, 2):
        raise InvalidInput(f"audio-chunk channels {data['channels']} is not 1 or 2", reason=ErrorCode.BAD_AUDIO_FORMAT)
    audio = event.payload or b""
    frame = data["width"] * data["channels"]
    if len(audio) % frame:
        raise InvalidInput(
            f"audio-chunk of {len(audio)} bytes is not whole frames of {frame} bytes", reason=ErrorCode.BAD_AUDIO_FORMAT
        )
    return AudioChunk(rate=data["rate"], width=data["width"], channels=data["channels"], audio=audio)


class Utterance:
    """One request's audio on its way to the asr, and the text that came back."""

    def __init__(
        self, backends: Backends, language: str, max_seconds: float, send: Callable[[Event], Awaitable[None]]
    ) -> None:
        self.backends = backends
        self.max_seconds = max_seconds
        self.send = send
        self.config = asr_pb2.RecognitionConfig(format=PCM16, language=language, interim_results=False)
        self.converter = AudioChunkConverter(rate=RATE, width=2, channels=1)
        self.audio: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_CHUNKS)
        self.seconds = 0.0
        self.texts: list[str] = []
        self.task: asyncio.Task[None] | None = None
        self.speaking = False  # the asr heard speech start and has not finalised it yet
        self.lost = False  # the asr died in the middle of speech: that part of the audio is gone

    async def feed(self, chunk: AudioChunk) -> None:
        if self.task is None:
            await self.send(TranscriptStart(language=self.config.language or None).event())
            self.task = asyncio.create_task(self._recognize())
        elif self.task.done():
            await self.task  # raises what ended recognition (the request is over)
        self.seconds += chunk.seconds
        if self.seconds > self.max_seconds:
            raise TooLarge(f"audio is longer than {self.max_seconds:g} s", reason=ErrorCode.AUDIO_TOO_LONG)
        pcm = self.converter.convert(chunk).audio
        if pcm:
            await self._put(pcm)

    async def _put(self, pcm: bytes) -> None:
        """Queue audio for the asr; if recognition ends meanwhile, raise why instead of waiting forever."""
        assert self.task is not None
        put = asyncio.ensure_future(self.audio.put(pcm))
        await asyncio.wait({put, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            await self.task
            raise StageError("asr", grpc.StatusCode.INTERNAL, "the recognition stream ended before the audio did")

    async def finish(self) -> str:
        """The whole transcript, once the asr has decoded the end of the audio."""
        if self.task is not None:
            await self.audio.put(None)
            await self.task
        return " ".join(self.texts)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _requests(self) -> AsyncIterator[asr_pb2.StreamingRecognizeRequest]:
        yield asr_pb2.StreamingRecognizeRequest(config=self.config)
        if self.speaking:  # a new stream in the middle of speech: the asr died and lost what it had heard
            self.lost = True
            return
        while (pcm := await self.audio.get()) is not None:
            yield asr_pb2.StreamingRecognizeRequest(audio=pcm)

    async def _recognize(self) -> None:
        async for reply in self.backends.recognize(self._requests):
            kind = reply.WhichOneof("event")
            self.speaking = kind != "final" and (self.speaking or kind == "speech_started")
            text = reply.final.result.text.strip() if kind == "final" else ""
            if text:
                await self.send(TranscriptChunk(text=text if not self.texts else " " + text).event())
                self.texts.append(text)
        if self.lost:
            # A transcript missing words would be taken for what was said: the request fails instead.
            raise StageError(
                "asr",
                grpc.StatusCode.UNAVAILABLE,
                "the asr restarted in the middle of the speech and lost part of it: send the audio again",
                ErrorCode.ASR_RESTARTED,
            )


class AsrHandler(Handler):
    """One client of the speech-to-text server."""

    def __init__(self, backends: Backends, max_audio_seconds: float, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.backends = backends
        self.max_audio_seconds = max_audio_seconds
        self.language = ""
        self.utterance: Utterance | None = None
        # After a failed request, its remaining audio is dropped until the next start or stop.
        self.dropping = False

    async def handle(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event((await asr_info(self.backends)).event())
        elif Transcribe.is_type(event.type):
            await self._transcribe(parse(Transcribe, event))
        elif AudioStart.is_type(event.type):
            self._drop_request()
            self.dropping = False
        elif AudioChunk.is_type(event.type):
            if not self.dropping:
                await self._chunk(event)
        elif AudioStop.is_type(event.type):
            await self._stop()
        else:
            logger.debug("ignoring a %s event", event.type)
        return True

    async def _transcribe(self, request: Transcribe) -> None:
        language = request.language or ""
        if not isinstance(language, str) or len(language) > 16:
            raise InvalidInput("transcribe language must be a short code such as 'en'", reason=ErrorCode.BAD_LANGUAGE)
        if request.name:
            models = await self.backends.unary("asr", self.backends.asr.ListModels, asr_pb2.ListModelsRequest())
            names = [m.name for m in models.models]
            if request.name not in names:
                raise InvalidInput(
                    f"unknown model {str(request.name)[:100]!r}: this server has {', '.join(names)}",
                    reason=ErrorCode.UNKNOWN_MODEL,
                )
        self.language = language

    async def _chunk(self, event: Event) -> None:
        if self.utterance is None:
            self.utterance = Utterance(self.backends, self.language, self.max_audio_seconds, self.write_event)
        await self.utterance.feed(checked_chunk(event))

    async def _stop(self) -> None:
        utterance, self.utterance = self.utterance, None
        language, self.language = self.language, ""
        if self.dropping:
            self.dropping = False
            return
        if utterance is None:
            logger.warning("audio-stop with no audio: answering an empty transcript")
            await self.write_event(Transcript(text="").event())
            return
        try:
            text = await utterance.finish()
        except StageError:
            utterance.cancel()
            raise
        logger.info("transcribed %.1f s of audio: %d characters", utterance.seconds, len(text))
        await self.write_event(Transcript(text=text, language=language or None).event())
        await self.write_event(TranscriptStop().event())

    def _drop_request(self) -> None:
        if self.utterance is not None:
            self.utterance.cancel()
            self.utterance = None

    def reset(self) -> None:
        # A request that failed midway: drop the rest of its audio (a failed stop has none left).
        self.dropping = self.utterance is not None
        self._drop_request()

    async def disconnect(self) -> None:
        utterance = self.utterance
        self._drop_request()
        if utterance is not None and utterance.task is not None:
            with contextlib.suppress(BaseException):
                await utterance.task
