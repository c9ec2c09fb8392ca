"""A turn's reply on ``/v1/stream``: the pipeline's events sent as the WebSocket's, the turn recorded
for `voxstack replay` when that is on, and the calls a reply makes handed to the client to run."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import WebSocketDisconnect
from opentelemetry.context import Context

from voxstack import provenance
from voxstack.core import events
from voxstack.core.pipeline import Pipeline, ReplyDone, SentenceAudio, TextDelta, Tools, WordsJudged
from voxstack.core.recorder import TakenTurn, TurnRecorder
from voxstack.core.toolturns import AwaitedCalls
from voxstack.core.turn import Turn
from voxstack.errors import VoxError
from voxstack.recordings import turn_settings
from voxstack.tracing import tracer
from voxstack.v1 import llm_pb2


class Send(Protocol):
    def __call__(self, event: events.Event, data: bytes | None = None) -> Awaitable[None]: ...


@dataclass
class StreamReplies:
    """How one conversation's turns are answered (its session, voice and tools, set by its config) and
    where their events go (``send``, the conversation's; ``told``: what the client is told of an error)."""

    pipeline: Pipeline
    send: Send
    told: Callable[[VoxError], str]
    rid: str = ""
    session_id: str = ""
    session_key: str | None = None
    voice: str = ""  # the config's voice for the replies ("" = the core's)
    language: str = ""
    tools: tuple[llm_pb2.Tool, ...] = ()  # the config's: functions the replies may call
    recorder: TurnRecorder | None = None  # records each turn for `voxstack replay`, when on
    asr_served: dict[str, dict[str, str]] = field(default_factory=dict)  # the asr instance heard it (provenance)
    awaiting: AwaitedCalls | None = None  # a turn whose reply called tools, waiting for their results

    def configure(self, config: events.StreamConfig, session_id: str, session_key: str | None) -> None:
        """Answer as the conversation's config says: its session, voice, language and tools; recorded or not."""
        self.session_id, self.session_key = session_id, session_key
        self.voice, self.language = config.voice, config.language
        self.tools = tuple(
            llm_pb2.Tool(name=t.name, description=t.description, parameters=json.dumps(t.parameters or {}))
            for t in config.tools
        )
        if not config.record:
            self.recorder = None

    async def speak(self, turn: Turn, trace_context: Context) -> None:
        """Answer ``turn`` in the trace of its utterance; the client gone (WebSocketDisconnect) ends it."""
        with (
            tracer().start_as_current_span(
                "core turn",
                context=trace_context,
                attributes={
                    "voxstack.turn": turn.number,
                    "voxstack.request_id": self.rid,
                    "voxstack.speculative": turn.confirmation is not None,
                },
            ),
            contextlib.suppress(WebSocketDisconnect),
        ):  # the client is gone (self.gone is set): so is the turn
            await self._speak(turn)

    async def send_turn(self, turn: Turn, event: events.Event, data: bytes | None = None) -> None:
        """Send what a turn produced; a speculative turn's waits until it is confirmed."""
        await turn.wait()
        await self.send(event, data)

    async def _speak(self, turn: Turn) -> None:
        metrics = self.pipeline.metrics
        number = turn.number
        first_sent = 0.0
        taken = None
        if self.recorder is not None and self.session_key is not None:
            taken = TakenTurn(turn, await self.pipeline.sessions.history(self.session_key))
            if not turn.typed:
                taken.served_by.update(self.asr_served)
        # This turn's calls note who served them in its recording, or nowhere (not in the asr stream's).
        provenance.served_by_var.set(taken.served_by if taken is not None else None)
        try:
            tools = turn.tools if turn.tools.exchange else Tools(self.tools)
            async for event in self.pipeline.reply(
                self.session_key,
                turn.text,
                started=turn.started,
                voice=self.voice,
                confirmation=turn.confirmation,
                tools=tools,
                # Held until confirmed: the words may be judged meanwhile (core/turn_taking.py).
                end_of_turn=turn.confirmation is not None and self.pipeline.settings.core.words_judged,
            ):
                if taken is not None:
                    taken.add(event)
                if isinstance(event, WordsJudged):
                    turn.judge(event.probability)
                    continue
                turn.judge(None)  # none comes after the reply's first words
                if isinstance(event, TextDelta):
                    await self.send_turn(turn, events.ReplyDelta(turn=number, text=event.text))
                elif isinstance(event, SentenceAudio):
                    meta = events.Audio(
                        turn=number,
                        index=event.index,
                        text=event.text,
                        sample_rate=event.sample_rate,
                        bytes=len(event.pcm16),
                    )
                    with tracer().start_as_current_span("core send audio"):
                        await self.send_turn(turn, meta, event.pcm16)
                    turn.first_audio_sent = turn.first_audio_sent or time.perf_counter()
                    if event.index == 0:
                        first_sent = time.perf_counter() - turn.speech_end
                        metrics.first_audio_seconds.observe(first_sent)
                elif isinstance(event, ReplyDone) and event.tool_calls:
                    # The client runs the calls; the turn goes on with their results (on_tool_result).
                    for call in event.tool_calls:
                        tool_call = events.ToolCall(turn=number, id=call.id, name=call.name, arguments=call.arguments)
                        await self.send_turn(turn, tool_call)
                    self.awaiting = AwaitedCalls(dataclasses.replace(turn, tools=tools), event.tool_calls)
                elif isinstance(event, ReplyDone):
                    await turn.wait()
                    event.timings.asr_decode = turn.asr_decode
                    event.timings.speculation_lead = turn.lead
                    event.timings.shift(turn.lead)
                    event.timings.first_audio = first_sent or event.timings.first_audio
                    metrics.turn_done("websocket", event.timings.as_dict())
                    recording = None
                    if taken is not None and self.recorder is not None:
                        recorder = self.recorder
                        settings = turn_settings(recorder.settings, self.voice, self.language)
                        summary = taken.summary(settings)
                        recording = recorder.record(self.session_id, number, summary, turn.heard, taken.reply())
                    turn.replied = True
                    await self.send(
                        events.ReplyDone(
                            turn=number,
                            text=event.text,
                            timings=event.timings.as_dict(),
                            prompt_tokens=event.prompt_tokens,
                            completion_tokens=event.completion_tokens,
                            recording=recording,
                        )
                    )
        except VoxError as exc:
            metrics.turns.labels("websocket", "error").inc()
            await self.send_turn(
                turn,
                events.Error(turn=number, code=exc.reason, message=self.told(exc), stage=getattr(exc, "stage", None)),
            )
        except asyncio.CancelledError:
            if turn.confirmed:
                metrics.turns.labels("websocket", "cancelled").inc()
            raise
        finally:
            turn.judge(None)  # a reply that failed or ended before any words: nothing to wait for
