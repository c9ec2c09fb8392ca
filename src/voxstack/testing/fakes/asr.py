"""A scripted asr: the real Asr proto, utterances found by loudness, transcripts from the script.

Audio above the script's ``level`` (RMS of 20 ms frames) is speech. An
utterance starts with the first loud frame and ends after ``end_silence``
seconds of quiet; the n-th utterance of a stream takes the n-th scripted
entry (the last one repeats). As the real service does, it sends
speech-started, partials when asked (one per 0.2 s of speech, from the
entry's ``partials``), a speculative result after ``speculative_after``
seconds of a pause when asked (speech-resumed if the speaker goes on),
speech-ended (with the entry's ``rule``, e.g. ``turn_model``, as what ended
it), then the final after ``final_delay``. After a JoinPrevious the
utterance's results are the previous text and its own (or the entry's
``joined_text``), flagged ``joins_previous``. An EndUtterance naming the
pause of the speculative result just sent ends the utterance there (rule
``words``), as the real one does. A draining service ends
its streams between utterances with RESTARTING, as the real one does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np

from voxstack.audio import PCM16, check_channels, check_rate, decode
from voxstack.codes import ErrorCode
from voxstack.config import Settings
from voxstack.errors import InvalidInput, NotReady
from voxstack.testing.fakes.script import die, read_section, scripted_error
from voxstack.v1 import asr_pb2, asr_pb2_grpc, common_pb2

FRAME_SECONDS = 0.02
PARTIAL_EVERY = 0.2


def entry(section: dict[str, Any], index: int) -> dict[str, Any]:
    """The scripted utterance ``index`` (the last one repeats; a numbered default without a script)."""
    utterances = section.get("utterances") or [{"text": "This is fake utterance {n}."}]
    chosen = dict(utterances[min(index, len(utterances) - 1)])
    chosen["text"] = str(chosen.get("text", "")).replace("{n}", str(index + 1))
    return chosen


def result(text: str, start: float, end: float, words: bool) -> asr_pb2.RecognitionResult:
    message = asr_pb2.RecognitionResult(
        text=text, language="en", language_probability=1.0, confidence=0.9, start_seconds=start, end_seconds=end
    )
    if words:
        spoken = text.split()
        step = (end - start) / max(1, len(spoken))
        for i, word in enumerate(spoken):
            message.words.add(word=word, start_seconds=start + i * step, end_seconds=start + (i + 1) * step)
    return message


class Utterance:
    """One utterance in progress."""

    def __init__(self, index: int, script: dict[str, Any], start: float) -> None:
        self.index = index
        self.script = script
        self.start = start
        self.quiet = 0.0  # seconds of quiet since the last loud frame
        self.spoken = 0.0  # seconds of speech so far
        self.partials_sent = 0
        self.guessed = False
        self.guess_end = -1.0  # the speculative result's end_seconds, while it stands
        self.pauses = 0  # speculative results sent
        self.joins: str | None = None  # the previous utterance's text, after a JoinPrevious

    @property
    def text(self) -> str:
        """Its transcript: joined, the script's ``joined_text`` (else the previous text and its own)."""
        own = str(self.script["text"])
        if self.joins is None:
            return own
        return str(self.script.get("joined_text") or f"{self.joins} {own}")


class FakeStream:
    """The state of one StreamingRecognize call."""

    def __init__(self, config: asr_pb2.RecognitionConfig, section: dict[str, Any]) -> None:
        fmt = config.format
        if fmt.encoding not in (0, PCM16):
            raise InvalidInput("streaming audio must be AUDIO_ENCODING_PCM16", reason=ErrorCode.BAD_ENCODING)
        self.config = config
        self.section = section
        self.rate = fmt.sample_rate_hz or 16_000
        self.channels = fmt.channels or 1
        check_rate(self.rate)
        check_channels(self.channels)
        self.frame_bytes = int(self.rate * FRAME_SECONDS) * 2 * self.channels
        self.pending = b""
        self.position = 0.0  # seconds of audio received
        self.count = 0  # utterances finished
        self.current: Utterance | None = None
        self.previous = ""  # the text of the last utterance that ended

    @property
    def idle(self) -> bool:
        return self.current is None

    def join_previous(self) -> None:
        """As the real asr: the utterance being heard is decoded with the previous one from now on."""
        if self.current is not None and self.previous and self.current.joins is None:
            self.current.joins = self.previous

    def message(self, **event: Any) -> asr_pb2.StreamingRecognizeResponse:
        index = self.current.index if self.current is not None else self.count
        return asr_pb2.StreamingRecognizeResponse(utterance_index=index, **event)

    async def feed(self, data: bytes) -> AsyncIterator[asr_pb2.StreamingRecognizeResponse]:
        self.pending += data
        while len(self.pending) >= self.frame_bytes:
            frame, self.pending = self.pending[: self.frame_bytes], self.pending[self.frame_bytes :]
            samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
            loud = float(np.sqrt(np.mean(samples**2))) > float(self.section.get("level", 0.01))
            self.position += FRAME_SECONDS
            async for reply in self._frame(loud):
                yield reply

    async def _frame(self, loud: bool) -> AsyncIterator[asr_pb2.StreamingRecognizeResponse]:
        now = self.position
        if self.current is None:
            if loud:
                self.current = Utterance(self.count, entry(self.section, self.count), now - FRAME_SECONDS)
                yield self.message(speech_started=asr_pb2.SpeechStarted(offset_seconds=self.current.start))
            return
        u = self.current
        if loud:
            if u.guessed:
                u.guessed = False
                yield self.message(speech_resumed=asr_pb2.SpeechResumed(offset_seconds=now))
            u.quiet = 0.0
            u.spoken += FRAME_SECONDS
            partials = u.script.get("partials") or []
            if (
                self.config.interim_results
                and u.partials_sent < len(partials)
                and u.spoken >= PARTIAL_EVERY * (u.partials_sent + 1)
            ):
                text = str(partials[u.partials_sent])
                u.partials_sent += 1
                yield self.message(partial=asr_pb2.PartialResult(text=text, stability=0.5))
            return
        u.quiet += FRAME_SECONDS
        guess_after = float(self.section.get("speculative_after", 0.1))
        if self.config.speculative_results and not u.guessed and u.quiet >= guess_after:
            u.guessed = True
            # One text per pause (the last repeats), as a real asr's transcript so far grows pause by pause.
            guesses = u.script.get("speculative") or [u.text]
            guesses = [guesses] if isinstance(guesses, str) else guesses
            text = str(guesses[min(u.pauses, len(guesses) - 1)])
            u.pauses += 1
            guess = result(text, u.start, now, self.config.word_timings)
            u.guess_end = guess.end_seconds
            guess.joins_previous = u.joins is not None
            yield self.message(speculative=asr_pb2.SpeculativeResult(result=guess))
        if u.quiet >= float(self.section.get("end_silence", 0.3)):
            async for reply in self.finish():
                yield reply

    async def end_utterance(self, end: asr_pb2.EndUtterance) -> AsyncIterator[asr_pb2.StreamingRecognizeResponse]:
        """The caller judged the words of the standing speculative result whole: end the utterance there."""
        u = self.current
        if u is not None and u.index == end.utterance_index and u.guessed and u.guess_end == end.end_seconds:
            async for reply in self.finish("words"):
                yield reply

    async def finish(self, rule_name: str = "") -> AsyncIterator[asr_pb2.StreamingRecognizeResponse]:
        """End the utterance in progress (if any): speech-ended (by ``rule_name``, else the script's rule),
        then its final."""
        u = self.current
        if u is None:
            return
        end = self.position - u.quiet
        rule = f"END_RULE_{str(rule_name or u.script.get('rule', 'unspecified')).upper()}"
        yield self.message(speech_ended=asr_pb2.SpeechEnded(offset_seconds=end, rule=rule))
        delay = float(u.script.get("final_delay", 0.05))
        await asyncio.sleep(delay)
        error = scripted_error(u.script.get("error"))
        if error is not None:
            raise error
        heard = result(u.text, u.start, end, self.config.word_timings)
        heard.joins_previous = u.joins is not None
        final = asr_pb2.FinalResult(
            result=heard,
            timings=common_pb2.Timings(processing_seconds=delay, total_seconds=delay, audio_seconds=end - u.start),
        )
        yield self.message(final=final)
        self.current, self.previous = None, u.text
        self.count += 1
        if self.section.get("die_after_utterances") == self.count:
            die()


class FakeAsrServicer(asr_pb2_grpc.AsrServicer):
    def __init__(self, service: FakeAsrService) -> None:
        self.service = service

    async def Recognize(
        self, request: asr_pb2.RecognizeRequest, context: grpc.aio.ServicerContext
    ) -> asr_pb2.RecognizeResponse:
        received = time.perf_counter()
        audio = decode(request.audio, request.config.format, max_seconds=self.service.settings.asr.max_audio_seconds)
        script = read_section("asr").get("recognize") or entry(read_section("asr"), 0)
        await asyncio.sleep(float(script.get("delay", 0.0)))
        error = scripted_error(script.get("error"))
        if error is not None:
            raise error
        total = time.perf_counter() - received
        return asr_pb2.RecognizeResponse(
            result=result(str(script.get("text", "")), 0.0, audio.seconds, True),
            timings=common_pb2.Timings(processing_seconds=total, total_seconds=total, audio_seconds=audio.seconds),
        )

    async def ListModels(
        self, request: asr_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> asr_pb2.ListModelsResponse:
        model = asr_pb2.AsrModel(name="fake-asr", languages=["en"], default_language="en")
        return asr_pb2.ListModelsResponse(models=[model])

    async def StreamingRecognize(
        self,
        request_iterator: AsyncIterator[asr_pb2.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[asr_pb2.StreamingRecognizeResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("request") != "config":
            raise InvalidInput("the first StreamingRecognize message must be the config", reason=ErrorCode.CONFIG_FIRST)
        stream = FakeStream(first.config, read_section("asr"))
        # Audio is read in its own task so that a draining service can end an idle stream at once.
        audio: asyncio.Queue[bytes | asr_pb2.EndUtterance | None] = asyncio.Queue()

        async def pump() -> None:
            async for request in request_iterator:
                kind = request.WhichOneof("request")
                if kind == "join_previous":
                    stream.join_previous()
                    continue
                if kind == "end_utterance":
                    await audio.put(request.end_utterance)  # in order with the audio
                    continue
                if kind != "audio":
                    raise InvalidInput("only the first message may be a config", reason=ErrorCode.CONFIG_FIRST)
                await audio.put(request.audio)
            await audio.put(None)

        reader = asyncio.ensure_future(pump())
        draining = asyncio.ensure_future(self.service.draining.wait())
        got = asyncio.ensure_future(audio.get())
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {got}
                waiting |= {f for f in (reader, draining) if not f.done()}
                await asyncio.wait(waiting, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
                if got.done():
                    data = got.result()
                    if data is None:
                        async for reply in stream.finish():
                            yield reply
                        return
                    got = asyncio.ensure_future(audio.get())
                    replies = (
                        stream.end_utterance(data) if isinstance(data, asr_pb2.EndUtterance) else stream.feed(data)
                    )
                    async for reply in replies:
                        yield reply
                elif reader.done() and reader.exception() is not None:
                    raise reader.exception()  # type: ignore[misc]
                if draining.done() and stream.idle:
                    raise NotReady("asr is restarting: open a new stream", reason=ErrorCode.RESTARTING)
        finally:
            for task in (reader, draining, got):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


class FakeAsrService:
    """The scripted asr behind the shared gRPC host (health, interceptor, metrics are the real ones)."""

    name = "asr"
    grpc_names = ("voxstack.v1.Asr",)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.draining = asyncio.Event()

    def drain(self) -> None:
        self.draining.set()

    def register(self, server: grpc.aio.Server) -> None:
        asr_pb2_grpc.add_AsrServicer_to_server(FakeAsrServicer(self), server)

    async def start(self) -> None:
        await asyncio.sleep(float(read_section("asr").get("load_seconds", 0.0)))

    async def close(self) -> None:
        return None


def create(settings: Settings) -> FakeAsrService:
    """The factory the fake is served by (``FACTORIES["asr"]``)."""
    return FakeAsrService(settings)
