"""``/v1/stream``: a spoken conversation over one WebSocket.

The client sends a JSON config, then binary PCM16 chunks (and optionally
``{"type": "end"}``). The server sends the events of ``core.events`` as they
happen; an ``audio`` event is followed by one binary frame of PCM16. When the
client starts speaking while a reply is still being produced, that reply's
llm and tts calls are cancelled and its audio stops (barge-in).

With ``speculative_reply`` the reply starts at the asr's speculative
transcript (the speaker's first pause) and waits, unseen, until the final
confirms it; speech that goes on drops it, a different final redoes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from opentelemetry import trace
from opentelemetry.context import Context

from voxstack import provenance
from voxstack.codes import CloseCode, ErrorCode
from voxstack.config import CoreSettings
from voxstack.core import events
from voxstack.core.clients import Backends, StageError
from voxstack.core.continuation import Continuation
from voxstack.core.deps import session_key
from voxstack.core.drain import RECONNECT_REASON, Quiet
from voxstack.core.errors import caller_message
from voxstack.core.fairness import owner_var
from voxstack.core.inputguard import InputGuard
from voxstack.core.pipeline import Pipeline
from voxstack.core.recorder import Tape, TurnRecorder
from voxstack.core.speculation import SpeculativeReply
from voxstack.core.stream_replies import StreamReplies
from voxstack.core.turn import Turn
from voxstack.core.turn_taking import HELD_RULES, until_taken
from voxstack.core.ws_writer import WsWriter
from voxstack.errors import InvalidInput, VoxError
from voxstack.logs import request_id_var
from voxstack.recordings import Pcm
from voxstack.tracing import from_trace_parent, tracer
from voxstack.v1 import asr_pb2, common_pb2

logger = logging.getLogger(__name__)


class StreamConversation:
    """One WebSocket connection."""

    def __init__(
        self,
        ws: WebSocket,
        pipeline: Pipeline,
        backends: Backends,
        core_settings: CoreSettings,
        draining: asyncio.Event | None = None,
        recorder: TurnRecorder | None = None,
    ) -> None:
        self.ws = ws
        self.draining = draining or asyncio.Event()  # set when this core stops: hand over at the next pause
        # Nobody speaks and no reply runs: a stopping core hands the conversation over then.
        self.quiet = Quiet(lambda: not (self.speaking or self.speculation.pending is not None or self.replying))
        self._speaking = False
        self._turn: asyncio.Task[None] | None = None
        self.pipeline = pipeline
        self.speculation = SpeculativeReply(
            pipeline.metrics.speculations, self.quiet.changed, core_settings.turn_words_end_threshold
        )
        self.backends = backends
        self.core_settings = core_settings
        # Bounded: when the asr falls behind, the reader stops reading the socket (backpressure).
        # What goes to the asr: audio, and JoinPrevious when a turn is withdrawn (after the audio before it).
        self.audio: asyncio.Queue[bytes | asr_pb2.StreamingRecognizeRequest | None] = asyncio.Queue(
            maxsize=core_settings.ws_queue_chunks
        )
        self.gone = asyncio.Event()  # the client went away: drop everything, cancel everything
        self.writer = WsWriter(core_settings.ws_send_timeout, pipeline.metrics.slow_clients, self.gone)
        self.turns = 0
        self.speech_end = time.perf_counter()
        self.trace = Context()  # the current utterance's trace (empty: tracing is off, or none yet)
        self.stage_span: trace.Span | None = None
        rid = request_id_var.get() or ""
        self.replies = StreamReplies(pipeline, self.send, self.told, rid, recorder=recorder)
        self.tape: Tape | None = None  # the audio of the asr stream, when turns are recorded
        self.utterance_span = (0.0, 0.0)  # the current utterance's start and end offsets in the asr stream
        self.answering: Turn | None = None  # the turn self.turn answers
        self.continuation: Continuation | None = None  # a withdrawn turn the next utterance goes on with
        self.end_rule = ""  # what ended the utterance being finished (the asr's speech_ended rule)
        self.taking: asyncio.Task[None] | None = None  # a turn ended by a pause, not taken yet (turn_taking)

    @property
    def speaking(self) -> bool:
        """An utterance has started and its final has not come."""
        return self._speaking

    @speaking.setter
    def speaking(self, value: bool) -> None:
        self._speaking = value
        self.quiet.changed()

    @property
    def turn(self) -> asyncio.Task[None] | None:
        """The turn being answered (its task runs until the reply is spoken or cancelled)."""
        return self._turn

    @turn.setter
    def turn(self, task: asyncio.Task[None] | None) -> None:
        self._turn = task
        if task is not None:
            task.add_done_callback(self.quiet.changed)
        self.quiet.changed()

    @property
    def replying(self) -> bool:
        return self._turn is not None and not self._turn.done()

    @property
    def reply_under_way(self) -> bool:
        """Whether a reply can be interrupted: its task runs and its reply_done is not out (after it, the task
        only winds down, and a barge_in would name a finished turn)."""
        return self.replying and not (self.answering is not None and self.answering.replied)

    def told(self, exc: VoxError) -> str:
        """What the client is told of ``exc`` (no backend internals in prod)."""
        return caller_message(exc, detail=self.pipeline.settings.error_detail)

    async def send(self, event: events.Event, data: bytes | None = None) -> None:
        """Send an event (and its binary frame); a client that has stopped reading is dropped (core/ws_writer.py)."""
        await self.writer.write(lambda: self._write(event, data))

    async def _write(self, event: events.Event, data: bytes | None) -> None:
        await self.ws.send_json(event.payload())
        if data is not None:
            await self.ws.send_bytes(data)

    async def receive(self, *, first: bool = False) -> MutableMapping[str, Any] | None:
        """The client's next message; None once it has said nothing for ``ws_idle_seconds`` (then it is
        closed). The ``first`` (the config) has ``ws_config_seconds``: a socket that never starts holds no
        slot for long."""
        seconds = self.core_settings.ws_config_seconds if first else self.core_settings.ws_idle_seconds
        try:
            return await asyncio.wait_for(self.ws.receive(), seconds)
        except asyncio.TimeoutError:
            if first:
                await self.refuse(
                    ErrorCode.CONFIG_TIMEOUT,
                    f"no config arrived within {seconds:g} s: closing",
                    CloseCode.POLICY_VIOLATION,
                )
            else:
                await self.refuse(
                    ErrorCode.IDLE_TIMEOUT, f"nothing was received for {seconds:g} s: closing", CloseCode.NORMAL_CLOSURE
                )
            return None

    async def run(self) -> None:
        first = await self.receive(first=True)
        if first is None or first["type"] == "websocket.disconnect":
            return
        try:
            stream_config, session_id = events.parse_config(first.get("text"))
        except VoxError as exc:
            await self.send(events.Error(code=exc.reason, message=self.told(exc)))
            await self.ws.close(CloseCode.POLICY_VIOLATION)
            return
        replies = self.replies
        replies.configure(stream_config, session_id, session_key(self.ws, session_id))
        if stream_config.history and replies.session_key is not None:
            await self.start_history(replies.session_key, stream_config.history)
        if replies.recorder is not None:
            keep = self.pipeline.settings.asr.max_audio_seconds + 5
            self.tape = Tape(stream_config.sample_rate, stream_config.channels, keep)
        if replies.voice and not await self.voice_exists(replies.voice):
            await self.refuse(
                ErrorCode.UNKNOWN_VOICE,
                f"unknown voice {replies.voice!r}: see GET /v1/voices",
                CloseCode.POLICY_VIOLATION,
            )
            return
        config = asr_pb2.RecognitionConfig(
            format=common_pb2.AudioFormat(
                encoding=common_pb2.AUDIO_ENCODING_PCM16,
                sample_rate_hz=stream_config.sample_rate,
                channels=stream_config.channels,
            ),
            language=stream_config.language,
            interim_results=stream_config.interim_results,
            speculative_results=self.core_settings.speculative_reply,
        )
        await self.send(events.Ready(session_id=session_id))
        reader = asyncio.create_task(self.read(frame_bytes=2 * stream_config.channels, rate=stream_config.sample_rate))
        work = asyncio.create_task(self.converse(config))
        gone = asyncio.create_task(self.gone.wait())
        handover = asyncio.create_task(self.hand_over())
        try:
            await asyncio.wait([work, gone, handover], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, work, gone, handover):
                task.cancel()
            await asyncio.gather(reader, work, gone, handover, return_exceptions=True)
            await self.speculation.drop("wasted")
            await self.cancel_turn()
            self.next_stage(None)
            if not self.gone.is_set():  # a refusal has closed the socket already
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.ws.close(CloseCode.NORMAL_CLOSURE), 1.0)

    async def hand_over(self) -> None:
        """Once the core is stopping: at the first moment nobody speaks and no reply runs, close with
        1012 so that the client reconnects (with its session id) to the instance that took over."""
        await self.draining.wait()
        await self.quiet.wait()
        logger.info("core stopping: handing the conversation over (close %d)", CloseCode.SERVICE_RESTART)
        self.gone.set()
        with contextlib.suppress(Exception):
            await self.ws.close(CloseCode.SERVICE_RESTART, RECONNECT_REASON)

    async def converse(self, config: asr_pb2.RecognitionConfig) -> None:
        try:
            await self.recognize(config)
            if self.turn is not None:
                await asyncio.wait([self.turn])
        except WebSocketDisconnect:
            self.gone.set()
        except VoxError as exc:
            with contextlib.suppress(Exception):
                await self.send(events.Error(code=exc.reason, message=self.told(exc)))

    async def read(self, frame_bytes: int, rate: int) -> None:
        """Client messages into the audio queue; None ends the recognition stream.

        The queue is bounded: while the asr is behind, the socket is not read.
        What a client may send, and how fast, is the InputGuard's to say.
        """
        guard = InputGuard(self.core_settings, frame_bytes, rate)
        ended = False
        try:
            while True:
                message = await self.receive()
                if message is None:
                    return
                if message["type"] == "websocket.disconnect":
                    self.gone.set()
                    return
                data, text = message.get("bytes"), message.get("text")
                refusal = guard.message() or (guard.audio(len(data)) if data else None)
                if refusal is not None:
                    await self.refuse(refusal.code, refusal.message, refusal.close_code)
                    return
                if data:
                    await self.audio.put(data)
                elif text is not None:
                    if events.is_end(text):
                        await self.audio.put(None)  # after the audio already queued
                        ended = True
                        return
                    await self.on_text(text)
        finally:
            if not ended:  # the client went away or broke the protocol: nobody is left to hear the rest
                while not self.audio.empty():
                    self.audio.get_nowait()
                self.audio.put_nowait(None)

    async def refuse(self, code: str, message: str, close_code: int) -> None:
        """An error that ends the conversation: the event, then the close with ``close_code``."""
        with contextlib.suppress(Exception):
            await self.send(events.Error(code=code, message=message))
        self.gone.set()
        with contextlib.suppress(Exception):
            await self.ws.close(close_code)

    async def requests(self, config: asr_pb2.RecognitionConfig) -> AsyncIterator[asr_pb2.StreamingRecognizeRequest]:
        if self.speaking:  # a new stream in the middle of an utterance: the asr died and lost it
            self.speaking = False
            await self.speculation.drop("wasted")
            self.next_stage(None)
            await self.send(
                events.Error(
                    code=ErrorCode.ASR_RESTARTED,
                    stage="asr",
                    message="the asr restarted while you were speaking: that utterance was lost, please say it again",
                )
            )
        if self.tape is not None:
            self.tape.new_stream()
        yield asr_pb2.StreamingRecognizeRequest(config=config)
        while (chunk := await self.audio.get()) is not None:
            if isinstance(chunk, asr_pb2.StreamingRecognizeRequest):
                yield chunk
                continue
            if self.tape is not None:
                self.tape.add(chunk)
            yield asr_pb2.StreamingRecognizeRequest(audio=chunk)

    async def recognize(self, config: asr_pb2.RecognitionConfig) -> None:
        """One asr stream for the connection (continued on a new one when the asr restarts)."""
        provenance.served_by_var.set(self.replies.asr_served)
        async for reply in self.backends.recognize(lambda: self.requests(config)):
            await self.on_asr(reply)

    async def on_asr(self, reply: asr_pb2.StreamingRecognizeResponse) -> None:
        kind = reply.WhichOneof("event")
        utterance = reply.utterance_index
        if kind == "speech_started":
            # The asr started a trace for this utterance: the turn that answers it continues it.
            self.next_stage(None)
            self.trace = from_trace_parent(reply.trace_parent)
            self.next_stage("core receive audio")
            self.speaking = True
            start = reply.speech_started.offset_seconds
            await self.speculation.drop("wasted")
            if self.reply_under_way:
                answering, now = self.answering, time.perf_counter()
                # A turn not taken yet (core/turn_taking.py) sent nothing: it always joins the next.
                taken = self.taking is None or self.taking.done()
                unheard = answering is not None and answering.unheard(now)
                if answering is not None and (not taken or (self.core_settings.join_unheard_turns and unheard)):
                    # They were not done: one reply to all of it (core.continuation).
                    self.continuation = Continuation(answering.text, self.utterance_span[0])
                    start = self.continuation.start
                    # The asr decodes both utterances as one: the second part heard with the first.
                    self.to_asr(join_previous=asr_pb2.JoinPrevious())
                    logger.info("the speaker went on before turn %d was heard: it joins the next", answering.number)
                else:
                    self.pipeline.metrics.barge_ins.inc()
                await self.cancel_turn()
                if taken:
                    await self.send(events.BargeIn(turn=self.turns))
                else:  # nothing of it was sent: its number is the next turn's
                    self.turns -= 1
            self.utterance_span = (start, 0.0)
            await self.send(events.SpeechStarted(utterance=utterance))
        elif kind == "partial":
            await self.send(events.Partial(utterance=utterance, text=reply.partial.text))
        elif kind == "speech_ended":
            self.speech_end = time.perf_counter()
            self.utterance_span = (self.utterance_span[0], reply.speech_ended.offset_seconds)
            self.next_stage("core wait for asr final")
            rule = asr_pb2.EndRule.Name(reply.speech_ended.rule).removeprefix("END_RULE_").lower()
            self.end_rule = rule
            await self.send(events.SpeechEnded(utterance=utterance, rule="" if rule == "unspecified" else rule))
        elif kind == "speculative":
            await self.speculate(utterance, reply.speculative.result)
        elif kind == "speech_resumed":
            await self.speculation.drop("wasted")
        elif kind == "final":
            try:
                await self.on_final(utterance, reply.final)
            finally:
                self.speaking = False  # only now: a stopping core hands over once the turn has started

    async def on_final(self, utterance: int, final: asr_pb2.FinalResult) -> None:
        """The utterance's final transcript: confirm the speculative reply to it, or answer it anew. A turn ended
        by a pause is taken, its transcript sent, once its words are judged whole too (core/turn_taking.py)."""
        self.next_stage(None)
        held = self.end_rule in HELD_RULES and self.core_settings.turn_words_threshold > 0
        if not held:
            await self.send(events.Transcript(utterance=utterance, text=final.result.text))
        continuation, self.continuation = self.continuation, None
        text = continuation.join(final.result) if continuation is not None else final.result.text
        speculation = self.speculation.take()
        asr_decode = final.timings.processing_seconds
        if not text.strip():
            if held:
                await self.send(events.Transcript(utterance=utterance, text=final.result.text))
            await self.speculation.cancel(speculation, "wasted")
            return
        await self.cancel_turn()
        self.replies.awaiting = None  # a new turn: calls still without results are dropped
        self.turns += 1
        if self.speculation.use(speculation, utterance, text):
            assert speculation is not None
            turn = speculation
        else:
            await self.speculation.cancel(speculation, "redone")
            confirmation = asyncio.Event() if held else None
            turn = Turn(self.turns, text, self.speech_end, asr_decode, utterance, confirmation=confirmation)
            turn.task = asyncio.create_task(self.replies.speak(turn, self.trace))
        turn.heard = self.heard()
        self.answering, self.turn = turn, turn.task
        if held:
            self.taking = asyncio.create_task(self.take(turn, utterance, final.result.text, asr_decode))
        elif turn.confirmation is not None:
            turn.confirm(asr_decode, self.speech_end)

    async def take(self, turn: Turn, utterance: int, heard: str, asr_decode: float) -> None:
        """Take ``turn`` once its words are judged whole, or the silence rule would have ended it: its
        transcript goes out, then its reply."""
        await until_taken(turn.judgement(), turn.text, self.pipeline.settings, self.speech_end, self.end_rule)
        await self.send(events.Transcript(utterance=utterance, text=heard))
        assert turn.confirmation is not None
        turn.confirm(asr_decode, self.speech_end)

    async def start_history(self, key: str, turns: list[events.HistoryTurn]) -> None:
        """A new session's earlier turns, from the config (a session with a history keeps its own)."""
        sessions = self.pipeline.sessions
        if await sessions.history(key):
            return
        for turn in turns:
            await sessions.append(key, turn.user, turn.assistant)

    def heard(self) -> Pcm | None:
        """The utterance that just ended, as the asr segmented it (when turns are recorded)."""
        if self.tape is None:
            return None
        began, ended = self.utterance_span
        return self.tape.cut(began, ended or began + self.pipeline.settings.asr.max_audio_seconds)

    async def speculate(self, utterance: int, heard: asr_pb2.RecognitionResult) -> None:
        """Start the reply to what was said before this pause; nothing of it is sent until it is confirmed."""
        text = self.continuation.join(heard) if self.continuation is not None else heard.text
        if not text.strip():
            await self.speculation.drop("wasted")
            return
        turn = Turn(
            self.turns + 1, text, started=time.perf_counter(), utterance=utterance, confirmation=asyncio.Event()
        )
        trace_context = self.trace
        end = asr_pb2.EndUtterance(utterance_index=utterance, end_seconds=heard.end_seconds)
        await self.speculation.start(
            turn, lambda t: self.replies.speak(t, trace_context), lambda: self.to_asr(end_utterance=end)
        )

    def to_asr(self, **request: Any) -> None:
        """A request for the asr stream, after the audio queued; dropped when the queue is full (the asr far
        behind: a JoinPrevious's texts are joined, an EndUtterance's silence rule ends the utterance)."""
        with contextlib.suppress(asyncio.QueueFull):
            self.audio.put_nowait(asr_pb2.StreamingRecognizeRequest(**request))

    def next_stage(self, name: str | None) -> None:
        """End the utterance's current stage span; start the next one (if named) in the same trace."""
        if self.stage_span is not None:
            self.stage_span.end()
        self.stage_span = tracer().start_span(name, context=self.trace) if name else None

    async def on_tool_result(self, call_id: str, content: str) -> None:
        """A result of one of the calls the last reply made; with the last one, the turn goes on."""
        awaiting = self.replies.awaiting
        try:
            if awaiting is None:
                raise InvalidInput(
                    "tool_result: no tool call is waiting for a result", reason=ErrorCode.BAD_TOOL_RESULT
                )
            complete = awaiting.answer(call_id, content)
        except VoxError as exc:
            await self.send(events.Error(code=exc.reason, message=self.told(exc)))
            return
        if not complete:
            return
        self.replies.awaiting = None
        turn = awaiting.next_turn(started=time.perf_counter())
        self.answering, self.turn = turn, asyncio.create_task(self.replies.speak(turn, Context()))

    async def on_text(self, text: str) -> None:
        """A text frame after the config: a typed turn, a tool's result, else an error event (the frame is
        ignored)."""
        try:
            result = events.tool_result(text)
            said = events.typed_text(text, self.core_settings.max_text_chars) if result is None else ""
        except VoxError as exc:
            await self.send(events.Error(code=exc.reason, message=self.told(exc)))
            return
        if result is not None:
            await self.on_tool_result(*result)
            return
        refused = self.pipeline.shares.text_turn_refusal(owner_var.get())
        if refused is not None:  # before it cancels anything: the turn under way goes on
            message, seconds = refused
            await self.send(events.Error(code=ErrorCode.TEXT_TURNS_LIMITED, message=message, retry_after=seconds))
            return
        await self.speculation.drop("wasted")
        if self.reply_under_way:
            await self.cancel_turn()
            await self.send(events.BargeIn(turn=self.turns))
        self.speech_end = time.perf_counter()  # the turn's clock starts when the text arrives
        self.replies.awaiting = None  # a new turn: calls still without results are dropped
        self.turns += 1
        turn = Turn(self.turns, said, started=self.speech_end, typed=True)
        self.answering, self.turn = turn, asyncio.create_task(self.replies.speak(turn, Context()))

    async def voice_exists(self, voice: str) -> bool:
        """Whether the tts has ``voice``; True when the tts cannot say (the turn reports it then)."""
        try:
            return voice in {v.name for v in (await self.pipeline.voices()).voices}
        except StageError:
            return True

    async def cancel_turn(self) -> None:
        if self.taking is not None and not self.taking.done():
            self.taking.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.taking
        if self.turn is not None and not self.turn.done():
            self.turn.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.turn
