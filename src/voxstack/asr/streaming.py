"""One StreamingRecognize call: audio chunks in, speech events and results out.

Audio of any chunk size is decoded (PCM16, any rate, mono or stereo),
resampled to 16 kHz as a stream, and passed through the VAD. Each utterance
gets speech-started, partial results (when asked for, at most one decode in
flight, at a bounded rate), speech-ended as soon as the end is detected, then
its final result. When asked for, a pause first gets a speculative result (the
transcript so far, decoded while the pause may still turn out to be the end)
and speech-resumed if the speaker goes on. Closing the client side flushes the
last utterance.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr
from opentelemetry import trace
from opentelemetry.context import Context
from prometheus_client import CollectorRegistry

from voxstack.asr import SAMPLE_RATE
from voxstack.asr.audio_window import AudioWindow
from voxstack.asr.engine import Transcript, WhisperEngine
from voxstack.asr.results import END_RULES, result_message, stability
from voxstack.asr.turn import TurnModel
from voxstack.asr.vad import WINDOW, Segmenter, SileroStream, VadEvent
from voxstack.audio import PCM16, check_channels, check_rate, encoding_name
from voxstack.codes import ErrorCode
from voxstack.config import AsrSettings
from voxstack.errors import InvalidInput, VoxError
from voxstack.metrics.catalog import AsrMetrics
from voxstack.server.worker import Worker
from voxstack.tracing import trace_parent, tracer
from voxstack.v1 import asr_pb2, common_pb2

logger = logging.getLogger(__name__)

Emit = Callable[[asr_pb2.StreamingRecognizeResponse], None]
# One quiet VAD window (32 ms) starts a decode that becomes the final if the
# pause turns out to end the utterance (dropped if speech resumes). Measured on
# a 5.5 s utterance with a 2 s fit margin: end of speech to final 0.35 s after
# 1 window, 0.38 after 2, 0.41 after 3; a wasted pause decode costs CPU, not text.
PAUSE_DECODE_AFTER_WINDOWS = 1
#: How long after its end an utterance's audio is kept for a JoinPrevious (the caller's turn for it not heard yet).
JOIN_KEEP_SECONDS = 10.0
#: A decode's transcript, and its seconds queued and decoding.
Decoded = tuple[Transcript, float, float]


@dataclass
class PauseDecode:
    """A decode started when speech paused, keyed by where the speech ended: if the pause becomes the
    utterance's end, it is the final (saving the wait for the rest of the silence); if speech resumes, it is
    dropped."""

    speech_end: int
    task: asyncio.Task[Decoded]
    speculated: bool = False  # sent as a speculative result
    end_seconds: float = -1.0  # that result's end_seconds, which an EndUtterance names


@dataclass
class Utterance:
    """What the stream keeps of the utterance being heard, from its speech start to its end."""

    index: int
    start: int  # where it starts in the stream, its padding included
    span: trace.Span  # its trace, from speech start to final
    partial_at: int  # stream position of the last partial decode
    partial_wall: float  # and when it started
    last_partial: str = ""
    pause_decode: PauseDecode | None = None
    # The turn model is asked once per pause, keyed by where the speech ended; its last answer.
    turn_asked: int = -1
    turn_probability: float | None = None
    joins_previous: bool = False  # decoded from the previous utterance's start (JoinPrevious)


@dataclass(frozen=True)
class Ended:
    """Where the last utterance that ended lies in the stream (samples, its padding included)."""

    start: int
    end: int


def stream_turn_settings(config: asr_pb2.RecognitionConfig, settings: AsrSettings) -> tuple[float, int, int]:
    """The stream's VAD threshold, ending silence and padding: its config's where set, else the service's.
    Out of the ranges the settings take, or an unknown turn detection, is INVALID_ARGUMENT."""
    threshold = config.vad_threshold or settings.vad_threshold
    silence_ms = config.vad_min_silence_ms or settings.vad_min_silence_ms
    pad_ms = config.vad_pad_ms or settings.vad_pad_ms
    problems = [
        f"vad_threshold {threshold:g} is not between 0 and 1" if not 0 < threshold < 1 else "",
        f"vad_min_silence_ms {silence_ms} is not within 32-10000" if not 32 <= silence_ms <= 10_000 else "",
        f"vad_pad_ms {pad_ms} is over 2000" if pad_ms > 2000 else "",
        f"turn_detection {config.turn_detection[:40]!r} is not 'silence' or 'model'"
        if config.turn_detection not in ("", "silence", "model")
        else "",
    ]
    if any(problems):
        raise InvalidInput("; ".join(p for p in problems if p), reason=ErrorCode.BAD_TURN_DETECTION)
    return threshold, silence_ms, pad_ms


class RecognitionStream:
    """State of one streaming call; ``feed`` audio, then ``finish``."""

    def __init__(
        self,
        config: asr_pb2.RecognitionConfig,
        *,
        engine: WhisperEngine,
        vad: SileroStream,
        turn: TurnModel | None = None,
        settings: AsrSettings,
        worker: Worker,
        emit: Emit,
        metrics: AsrMetrics | None = None,
    ) -> None:
        fmt = config.format
        if fmt.encoding != PCM16:
            raise InvalidInput(
                f"StreamingRecognize takes AUDIO_ENCODING_PCM16 audio (got {encoding_name(fmt.encoding)}); "
                "send WAV files to Recognize",
                reason=ErrorCode.BAD_ENCODING,
            )
        if fmt.sample_rate_hz == 0:
            raise InvalidInput("sample_rate_hz is required for PCM16 audio", reason=ErrorCode.BAD_SAMPLE_RATE)
        check_rate(fmt.sample_rate_hz)
        self.channels = fmt.channels or 1
        check_channels(self.channels)
        self.rate = fmt.sample_rate_hz
        self.language = engine.language_for(config.language)
        self.interim = config.interim_results
        self.speculative = config.speculative_results
        self.word_timings = config.word_timings
        self.engine = engine
        self.vad = vad
        self.turn = turn
        self.settings = settings
        self.worker = worker
        self.emit = emit
        self.metrics = metrics or AsrMetrics(CollectorRegistry())
        threshold, silence_ms, pad_ms = stream_turn_settings(config, settings)
        if config.turn_detection == "silence":
            self.turn = None
        self.segmenter = Segmenter(threshold, silence_ms, settings.vad_min_speech_ms, pad_ms)
        self._resampler = (
            soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            if self.rate != SAMPLE_RATE
            else None
        )
        self._rest = b""  # bytes of an incomplete frame
        # The current utterance plus the padding before it.
        self._window = AudioWindow()
        self._utterances = 0  # ended so far: the index of the next
        self._current: Utterance | None = None  # the one being heard
        self._previous: Ended | None = None  # the last one that ended, while its audio is kept for a join
        self._partial_task: asyncio.Task[None] | None = None
        self._dropped: set[asyncio.Task[Any]] = set()  # cancelled decodes whose threads still run
        self._max_samples = int(settings.max_audio_seconds * SAMPLE_RATE)
        self._ending = False  # an utterance has ended and its final is not sent yet
        self._turn_windows = math.ceil(settings.turn_silence_ms * SAMPLE_RATE / 1000 / WINDOW)

    @property
    def idle(self) -> bool:
        """Between utterances: no speech, no speech starting, no final still to come."""
        return not self.segmenter.in_speech and not self.segmenter.starting and not self._ending

    async def feed(self, data: bytes) -> None:
        self.metrics.audio_seconds.labels("stream").inc(len(data) / (2 * self.channels * self.rate))
        samples = self._decode(data, last=False)
        if samples.size:
            await self._process(samples)

    async def finish(self) -> None:
        """The client closed its side: flush the resampler and end any utterance."""
        samples = self._decode(b"", last=True)
        if samples.size:
            await self._process(samples)
        end = self.segmenter.force_end("stream_end")
        if end is not None:
            await self._on_end(end)

    async def close(self) -> None:
        self._cancel_partial()
        current, self._current = self._current, None
        if current is not None:
            self._cancel_pause_decode(current)
            current.span.end()
        dropped = list(self._dropped)
        await asyncio.gather(*dropped, return_exceptions=True)

    def _cancel_pause_decode(self, u: Utterance) -> None:
        if u.pause_decode is not None:
            task = u.pause_decode.task
            u.pause_decode = None
            self._drop(task)

    def _drop(self, task: asyncio.Task[Any]) -> None:
        """Cancel a decode without waiting: its thread ends on its own time (a decode step cannot be
        interrupted), and this stream must go on reading audio meanwhile. ``close`` waits for it."""
        task.cancel()
        self._dropped.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._dropped.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a dropped decode's failure matters to nobody

    def _decode(self, data: bytes, *, last: bool) -> np.ndarray:
        data = self._rest + data
        frame = 2 * self.channels
        usable = len(data) - len(data) % frame
        self._rest = data[usable:]
        ints = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, self.channels)
        mono = ints.mean(axis=1, dtype=np.float32) / 32768.0 if self.channels > 1 else ints[:, 0] / np.float32(32768)
        mono = mono.astype(np.float32, copy=False)
        if self._resampler is None:
            return mono
        return self._resampler.resample_chunk(mono, last=last)

    async def _process(self, samples: np.ndarray) -> None:
        self._window.append(samples)
        probabilities = await asyncio.to_thread(self.vad, samples)
        for event in self.segmenter.push(probabilities):
            if event.kind == "start":
                self._on_start(event)
            else:
                await self._on_end(event)
        u = self._current
        if u is None:
            # Keep only what a future start's padding can reach back to, and the last utterance for a while.
            keep = self.segmenter.position - (self.segmenter.pad + 2 * 512)
            previous = self._previous
            if previous is not None and self.segmenter.position - previous.end <= JOIN_KEEP_SECONDS * SAMPLE_RATE:
                keep = min(keep, previous.start)
            else:
                self._previous = None
            self._window.trim(keep)
            return
        if self.segmenter.position - u.start >= self._max_samples:
            forced = self.segmenter.force_end("max_length")
            if forced is not None:
                await self._on_end(forced)
            return
        if await self._turn_finished(u):
            ended = self.segmenter.end_pause("turn_model")
            if ended is not None:
                await self._on_end(ended)
            return
        if self.segmenter.pause_windows >= PAUSE_DECODE_AFTER_WINDOWS:
            speech_end = self.segmenter.speech_end
            if u.pause_decode is None or u.pause_decode.speech_end != speech_end:
                self._speech_resumed(u)  # there was speech since the last pause decode
                self._cancel_pause_decode(u)
                self._cancel_partial()
                audio = self._window.slice(u.start, self.segmenter.position)
                task = asyncio.create_task(self._decode_utterance(u, audio))
                u.pause_decode = PauseDecode(speech_end, task)
                if self.speculative:
                    task.add_done_callback(lambda done: self._speculate(u, done))
            return
        self._speech_resumed(u)
        self._cancel_pause_decode(u)  # speech went on
        if self.interim and self._partial_task is None:
            # Bounded in audio time and in wall time: a client sending faster than
            # real time gets its finals sooner instead of partials it would not see.
            interval = self.settings.partial_interval
            audio_due = self.segmenter.position - u.partial_at >= interval * SAMPLE_RATE
            if audio_due and time.perf_counter() - u.partial_wall >= interval:
                u.partial_at = self.segmenter.position
                u.partial_wall = time.perf_counter()
                self._partial_task = asyncio.create_task(self._partial(u))

    async def _turn_finished(self, u: Utterance) -> bool:
        """Whether the turn model, asked once the pause is turn_silence_ms long, says the speaker finished."""
        if self.turn is None or self.segmenter.pause_windows < self._turn_windows:
            return False
        speech_end = self.segmenter.speech_end
        if u.turn_asked == speech_end:
            return False
        u.turn_asked = speech_end
        audio = self._window.slice(u.start, self.segmenter.position)
        try:
            u.turn_probability = await asyncio.to_thread(self.turn.probability, audio)
        except Exception:  # onnxruntime's own error types: the silence rule still ends the turn
            logger.exception("turn model failed: this pause waits for vad_min_silence_ms")
            return False
        self.metrics.turn_probability.observe(u.turn_probability)
        return u.turn_probability >= self.settings.turn_threshold

    def join_previous(self) -> None:
        """The utterance being heard goes on with the previous one: decode them as one from now on."""
        u, previous = self._current, self._previous
        if u is None or previous is None or u.joins_previous or previous.end <= self._window.start:
            logger.debug("JoinPrevious ignored: no utterance being heard, or the previous one's audio is gone")
            return
        self._cancel_pause_decode(u)  # its audio lacked the previous part
        self._cancel_partial()
        u.start, u.joins_previous = previous.start, True
        u.turn_asked = -1  # the turn model hears the whole at the next pause
        self._previous = None
        self.metrics.joins.inc()

    async def end_utterance(self, index: int, end_seconds: float) -> None:
        """The caller judged the words of the speculative result that ends at ``end_seconds`` whole: end
        utterance ``index`` at that pause, if the speaker has not gone on since."""
        u = self._current
        pause = u.pause_decode if u is not None else None
        if u is None or u.index != index or pause is None or not pause.speculated or pause.end_seconds != end_seconds:
            logger.debug("EndUtterance for utterance %d ignored: it ended already, or speech went on", index)
            return
        ended = self.segmenter.end_pause("words")
        if ended is not None:
            await self._on_end(ended)

    def _speculate(self, u: Utterance, task: asyncio.Task[Decoded]) -> None:
        """The pause's decode is done and the pause still goes on: send it as a speculative result."""
        pause = u.pause_decode
        if task.cancelled() or task.exception() is not None or pause is None or pause.task is not task:
            return  # dropped, failed (the final reports it), or already the final
        transcript = task.result()[0]
        if not transcript.text.strip():
            return
        pause.speculated, pause.end_seconds = True, transcript.end
        self.metrics.speculative.inc()
        self.emit(
            asr_pb2.StreamingRecognizeResponse(
                utterance_index=u.index,
                speculative=asr_pb2.SpeculativeResult(result=result_message(transcript, u.joins_previous)),
            )
        )

    def _speech_resumed(self, u: Utterance) -> None:
        """Speech went on after a speculative result: tell the caller it is void."""
        if u.pause_decode is None or not u.pause_decode.speculated:
            return
        u.pause_decode.speculated = False
        self.metrics.speech_resumed.inc()
        self.emit(
            asr_pb2.StreamingRecognizeResponse(
                utterance_index=u.index,
                speech_resumed=asr_pb2.SpeechResumed(offset_seconds=self.segmenter.position / SAMPLE_RATE),
            )
        )

    def _on_start(self, event: VadEvent) -> None:
        # Each utterance is a trace of its own (the turn that answers it continues it), linked to the stream's.
        stream = trace.get_current_span().get_span_context()
        span = tracer().start_span(
            "asr utterance",
            context=Context(),
            links=[trace.Link(stream)] if stream.is_valid else None,
            attributes={"voxstack.utterance": self._utterances},
        )
        self._current = Utterance(self._utterances, event.sample, span, event.sample, time.perf_counter())
        self.emit(
            asr_pb2.StreamingRecognizeResponse(
                utterance_index=self._utterances,
                speech_started=asr_pb2.SpeechStarted(offset_seconds=event.sample / SAMPLE_RATE),
                trace_parent=trace_parent(span),
            )
        )

    async def _on_end(self, event: VadEvent) -> None:
        self._ending = True
        try:
            await self._finish_utterance(event)
        finally:
            self._ending = False

    async def _finish_utterance(self, event: VadEvent) -> None:
        detected = time.perf_counter()
        u, self._current = self._current, None
        if u is None:  # the segmenter ends only what it started: nothing to finish
            return
        self._cancel_partial()
        self.metrics.utterance_ends.labels(event.rule).inc()
        self.emit(
            asr_pb2.StreamingRecognizeResponse(
                utterance_index=u.index,
                speech_ended=asr_pb2.SpeechEnded(
                    offset_seconds=event.sample / SAMPLE_RATE,
                    rule=END_RULES[event.rule],
                    end_of_turn_probability=u.turn_probability,
                ),
            )
        )
        audio = self._window.slice(u.start, event.sample)
        self._utterances += 1
        self._previous = Ended(u.start, event.sample)  # kept (from its start) for a JoinPrevious
        self._window.trim(u.start)
        pause = u.pause_decode
        if pause is not None and pause.speech_end == event.speech_end:
            u.pause_decode = None  # the final now: not dropped
            transcript, queued, processing = await pause.task
            transcript.end = event.sample / SAMPLE_RATE
        else:
            self._cancel_pause_decode(u)
            transcript, queued, processing = await self._decode_utterance(u, audio)
        seconds = audio.size / SAMPLE_RATE
        self.metrics.utterances.inc()
        self.metrics.final_seconds.observe(time.perf_counter() - detected)
        self.metrics.decode_seconds.labels("final").observe(processing)
        if seconds > 0:
            self.metrics.real_time_factor.labels("final").observe(processing / seconds)
        logger.debug("utterance %d: %r (%.2f s audio, %.3f s decode)", u.index, transcript.text, seconds, processing)
        self.emit(
            asr_pb2.StreamingRecognizeResponse(
                utterance_index=u.index,
                final=asr_pb2.FinalResult(
                    result=result_message(transcript, u.joins_previous),
                    timings=common_pb2.Timings(
                        queue_seconds=queued,
                        processing_seconds=processing,
                        total_seconds=time.perf_counter() - detected,
                        audio_seconds=seconds,
                    ),
                ),
                trace_parent=trace_parent(u.span),
            )
        )
        u.span.end()

    async def _decode_utterance(self, u: Utterance, audio: np.ndarray) -> Decoded:
        with trace.use_span(u.span, end_on_exit=False):  # the decode's spans belong to the utterance's trace
            done = await self.worker.run(self._transcribe, audio, u.start / SAMPLE_RATE)
        return done.value, done.queue_seconds, done.processing_seconds

    def _transcribe(self, cancel: threading.Event, audio: np.ndarray, offset: float) -> Transcript:
        # The VAD already cut out the silence.
        return self.engine.transcribe(
            cancel, audio, self.language, offset=offset, vad_filter=False, word_timings=self.word_timings
        )

    async def _partial(self, u: Utterance) -> None:
        audio = self._window.slice(u.start, self.segmenter.position)
        try:
            transcript, _, processing = await self._decode_utterance(u, audio)
            self.metrics.decode_seconds.labels("partial").observe(processing)
        except VoxError as exc:  # e.g. the queue is full: skip this partial, the final still comes
            logger.debug("partial skipped: %s", exc)
            return
        finally:
            if self._partial_task is asyncio.current_task():
                self._partial_task = None
        if u is not self._current or not transcript.text:
            return
        self.emit(
            asr_pb2.StreamingRecognizeResponse(
                utterance_index=u.index,
                partial=asr_pb2.PartialResult(
                    text=transcript.text, stability=stability(u.last_partial, transcript.text)
                ),
            )
        )
        u.last_partial = transcript.text
        self.metrics.partials.inc()

    def _cancel_partial(self) -> None:
        task = self._partial_task
        if task is not None:
            self._partial_task = None
            self._drop(task)
