"""The voice pipeline as plain code: transcribe -> generate -> split into sentences -> synthesize.

``reply`` streams everything a turn produces, in order: llm text deltas as they
come, and the audio of each sentence as soon as that sentence is complete and
spoken, while the llm goes on writing the next one. Stopping the iteration
(barge-in, client gone) cancels the llm and tts calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from voxstack.codes import ErrorCode
from voxstack.config import Settings
from voxstack.core.clients import Backends
from voxstack.core.fairness import KeyShares
from voxstack.core.sessions import SessionStore
from voxstack.errors import Busy, InvalidInput
from voxstack.server.feed import Feed
from voxstack.text import Phrase, SentenceStream
from voxstack.v1 import asr_pb2, common_pb2, llm_pb2, tts_pb2

# Set inside Pipeline.llm_reserved: the llm call of this turn has its place already.
_RESERVED: ContextVar[bool] = ContextVar("voxstack_llm_reserved", default=False)
_ROLES = {"system": llm_pb2.ROLE_SYSTEM, "user": llm_pb2.ROLE_USER, "assistant": llm_pb2.ROLE_ASSISTANT}


@dataclass
class TurnTimings:
    """Seconds, each from the start of the turn (for a spoken turn: asr's speech_ended, which comes
    ``vad_min_silence_ms`` after the last speech)."""

    asr_decode: float = 0.0
    llm_first_token: float = 0.0
    first_sentence: float = 0.0
    tts_first_chunk: float = 0.0
    first_audio: float = 0.0
    total: float = 0.0
    # A speculative reply: how long before the end of the utterance it started (its
    # stages then count from that end too, and may be negative: done before it).
    speculation_lead: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}

    def shift(self, seconds: float) -> None:
        """Count the stages from ``seconds`` later (durations stay as they are)."""
        for name in ("llm_first_token", "first_sentence", "first_audio", "total"):
            setattr(self, name, getattr(self, name) - seconds)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class SentenceAudio:
    index: int
    text: str
    pcm16: bytes
    sample_rate: int


@dataclass
class ReplyDone:
    text: str
    finish_reason: str
    timings: TurnTimings = field(default_factory=TurnTimings)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: The reply calls these instead of speaking (finish_reason FINISH_REASON_TOOL_CALLS); the turn goes on
    #: when the caller has their results.
    tool_calls: tuple[llm_pb2.ToolCall, ...] = ()


@dataclass(frozen=True)
class WordsJudged:
    """How likely the words the reply answers are a whole turn (the llm's EndOfTurn, when asked for)."""

    probability: float


ReplyEvent = TextDelta | SentenceAudio | ReplyDone | WordsJudged


@dataclass(frozen=True)
class Tools:
    """The functions a turn's reply may call, and (for the reply that goes on after calls) the calls made
    and their results: the messages that follow the user's."""

    offered: tuple[llm_pb2.Tool, ...] = ()
    exchange: tuple[llm_pb2.ChatMessage, ...] = ()


class Pipeline:
    def __init__(self, settings: Settings, backends: Backends, sessions: SessionStore) -> None:
        self.settings = settings
        self.backends = backends
        self.sessions = sessions
        self.metrics = backends.metrics  # one set for the core: its calls and its turns
        llm = settings.llm
        # What the llm takes at once, running and queued.
        self.llm_capacity = llm.concurrency + llm.max_queue
        self.llm_calls = 0
        self.shares = KeyShares(settings.core)

    @contextlib.contextmanager
    def llm_reserved(self) -> Iterator[None]:
        """A place in the llm's capacity from now until the block ends, for a turn whose llm call comes
        after other work (the asr of /v1/converse): refused at once (429) when there is none, and not
        refused later for a place others took meanwhile. The llm call inside uses the reservation."""
        self.check_llm_capacity()
        with self.shares.llm_call():
            self.llm_calls += 1
            token = _RESERVED.set(True)
            try:
                yield
            finally:
                _RESERVED.reset(token)
                self.llm_calls -= 1

    def check_llm_capacity(self) -> None:
        """Busy (429) when this core already has as many llm calls open as the llm takes: checked before
        a turn spends asr work on a reply that would be refused."""
        if self.llm_calls >= self.llm_capacity:
            raise Busy(
                f"the llm is busy: {self.llm_calls} replies are being written or wait (limit "
                f"{self.llm_capacity}); retry later",
                reason=ErrorCode.LLM_BUSY,
            )

    async def transcribe(
        self, audio: bytes, fmt: common_pb2.AudioFormat, language: str = ""
    ) -> asr_pb2.RecognizeResponse:
        request = asr_pb2.RecognizeRequest(config=asr_pb2.RecognitionConfig(format=fmt, language=language), audio=audio)
        return await self.backends.unary("asr", self.backends.asr.Recognize, request)

    async def speak(self, text: str, voice: str = "", sample_rate: int = 0) -> tts_pb2.SynthesizeResponse:
        request = tts_pb2.SynthesizeRequest(
            text=text,
            voice=voice or self.settings.core.voice,
            format=common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_WAV, sample_rate_hz=sample_rate),
        )
        return await self.backends.unary("tts", self.backends.tts.Synthesize, request)

    async def synthesize_stream(self, request: tts_pb2.SynthesizeRequest) -> AsyncIterator[tts_pb2.SynthesisChunk]:
        """The tts's audio of ``request``, a chunk a sentence."""
        async for chunk in self.backends.stream("tts", self.backends.tts.SynthesizeStream, request):
            yield chunk

    async def voices(self) -> tts_pb2.ListVoicesResponse:
        return await self.backends.unary("tts", self.backends.tts.ListVoices, tts_pb2.ListVoicesRequest())

    async def messages(self, session_id: str | None, text: str, system: str | None = None) -> list[llm_pb2.ChatMessage]:
        history = await self.sessions.history(session_id) if session_id else []
        chat = ([{"role": "system", "content": system}] if system else []) + history
        chat.append({"role": "user", "content": text})
        return [llm_pb2.ChatMessage(role=_ROLES[m["role"]], content=m["content"]) for m in chat]

    async def generate(
        self,
        session_id: str | None,
        text: str,
        system: str | None = None,
        confirmation: asyncio.Event | None = None,
        tools: Tools = Tools(),
        end_of_turn: bool = False,
    ) -> AsyncIterator[llm_pb2.GenerateResponse]:
        """The llm's reply as it streams; the turn joins the session's history when it completes
        (and, with ``confirmation``, once that is set: a speculative reply is not part of the conversation yet).
        A reply that calls tools does not: the turn is complete once the reply after their results is."""
        if not text.strip():
            raise InvalidInput("the message is empty", reason=ErrorCode.EMPTY_TEXT)
        messages = [*await self.messages(session_id, text, system), *tools.exchange]
        request = llm_pb2.GenerateRequest(messages=messages, tools=tools.offered, end_of_turn=end_of_turn)
        async for reply in self.complete(request):
            if reply.WhichOneof("event") == "done" and session_id and not reply.done.tool_calls:
                if confirmation is not None:
                    await confirmation.wait()
                await self.sessions.append(session_id, text, reply.done.text)
            yield reply

    async def complete(self, request: llm_pb2.GenerateRequest) -> AsyncGenerator[llm_pb2.GenerateResponse, None]:
        """The llm's reply to ``request`` as it streams, counted against the llm's capacity while it runs;
        refused at once (429 LLM_BUSY) when that is full, without a round trip to be refused there."""
        reserved = _RESERVED.get()  # counted since the turn arrived (llm_reserved)
        if reserved:
            async for reply in self.backends.stream("llm", self.backends.llm.Generate, request):
                yield reply
            return
        self.check_llm_capacity()
        with self.shares.llm_call():
            self.llm_calls += 1
            try:
                async for reply in self.backends.stream("llm", self.backends.llm.Generate, request):
                    yield reply
            finally:
                self.llm_calls -= 1

    async def reply(
        self,
        session_id: str | None,
        text: str,
        *,
        started: float | None = None,
        system: str | None = None,
        voice: str = "",
        confirmation: asyncio.Event | None = None,
        tools: Tools = Tools(),
        request: llm_pb2.GenerateRequest | None = None,
        audio: bool = True,
        end_of_turn: bool = False,
        call: AsyncGenerator[llm_pb2.GenerateResponse, None] | None = None,
    ) -> AsyncIterator[ReplyEvent]:
        """A spoken reply to ``text`` in ``voice`` (else the core's): deltas, sentence audio in order, ReplyDone.

        A caller that keeps its own conversation gives the llm's whole ``request`` instead (``text`` and the
        session are not used then); without ``audio`` the reply is text alone. With ``end_of_turn``, how likely
        ``text`` is a whole turn comes first (WordsJudged), when the llm can tell. ``call`` is the llm's call for
        ``request`` already started (the reply goes on from its next event).

        With ``confirmation`` (a speculative reply), only the first ``speculative_sentences`` are synthesised and the
        history is left alone until ``confirmation`` is set; the caller holds back what it yields until then.
        """
        t0 = started if started is not None else time.perf_counter()
        timings = TurnTimings()
        out: Feed[TextDelta | SentenceAudio | WordsJudged] = Feed()
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        done: dict[str, object] = {}

        async def write() -> None:
            core = self.settings.core
            splitter = SentenceStream(first_clause=core.first_clause, first_phrase_words=core.first_phrase_words)
            try:
                replies: AsyncIterator[llm_pb2.GenerateResponse]
                if call is not None:
                    replies = call
                elif request is not None:
                    replies = self.complete(request)
                else:
                    replies = self.generate(session_id, text, system, confirmation, tools, end_of_turn)
                async for reply in replies:
                    if reply.WhichOneof("event") == "end_of_turn":
                        out.put(WordsJudged(reply.end_of_turn.probability))
                    elif reply.WhichOneof("event") == "delta":
                        timings.llm_first_token = timings.llm_first_token or time.perf_counter() - t0
                        out.put(TextDelta(reply.delta))
                        for sentence in splitter.feed(reply.delta):
                            timings.first_sentence = timings.first_sentence or time.perf_counter() - t0
                            sentences.put_nowait(sentence)
                    else:
                        done["text"] = reply.done.text
                        done["reason"] = llm_pb2.FinishReason.Name(reply.done.finish_reason)
                        done["usage"] = reply.done.usage
                        done["calls"] = tuple(reply.done.tool_calls)
                for sentence in splitter.flush():
                    timings.first_sentence = timings.first_sentence or time.perf_counter() - t0
                    sentences.put_nowait(sentence)
            finally:
                sentences.put_nowait(None)

        async def speak() -> None:
            index = 0
            while (sentence := await sentences.get()) is not None:
                if not audio:
                    continue
                if confirmation is not None and index >= self.settings.core.speculative_sentences:
                    await confirmation.wait()
                asked = time.perf_counter()
                reply = await self.backends.unary(
                    "tts",
                    self.backends.tts.Synthesize,
                    tts_pb2.SynthesizeRequest(
                        text=sentence.spoken() if isinstance(sentence, Phrase) else sentence,
                        voice=voice or self.settings.core.voice,
                        format=common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16),
                    ),
                )
                if index == 0:
                    timings.tts_first_chunk = time.perf_counter() - asked
                    timings.first_audio = time.perf_counter() - t0
                out.put(SentenceAudio(index, sentence, reply.audio, reply.format.sample_rate_hz))
                index += 1

        async with out.running(write, speak):
            async for item in out:
                yield item
        timings.total = time.perf_counter() - t0
        reported = done.get("usage")
        usage = reported if isinstance(reported, llm_pb2.TokenUsage) else llm_pb2.TokenUsage()
        calls = done.get("calls")
        yield ReplyDone(
            str(done.get("text", "")),
            str(done.get("reason", "")),
            timings,
            usage.prompt_tokens,
            usage.completion_tokens,
            calls if isinstance(calls, tuple) else (),
        )
