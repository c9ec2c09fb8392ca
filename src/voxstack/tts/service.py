"""The tts gRPC servicer and the Service the shared host runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import numpy as np

from voxstack.audio import PCM16, WAV, check_rate, encoding_name, float_to_pcm16, resample, wav_bytes
from voxstack.codes import ErrorCode
from voxstack.config import Settings, TtsSettings
from voxstack.errors import InvalidInput
from voxstack.metrics.catalog import TtsMetrics
from voxstack.server.memory import release_free_memory
from voxstack.server.worker import Worker
from voxstack.text import clean, sentence_spans
from voxstack.tts.engine import Options, PiperEngine, VoiceInfo
from voxstack.tts.prepared import PreparedTts
from voxstack.v1 import common_pb2, tts_pb2, tts_pb2_grpc

logger = logging.getLogger(__name__)

OUTPUT_RATES = (8_000, 48_000)


@dataclass(frozen=True)
class Job:
    """A validated request."""

    text: str
    spans: list[tuple[int, int]]
    voice: VoiceInfo
    options: Options
    encoding: common_pb2.AudioEncoding
    rate: int

    @property
    def format(self) -> common_pb2.AudioFormat:
        return common_pb2.AudioFormat(encoding=self.encoding, sample_rate_hz=self.rate, channels=1)

    def encode(self, samples: np.ndarray) -> bytes:
        pcm = float_to_pcm16(samples)
        return wav_bytes(pcm, self.rate) if self.encoding == WAV else pcm


def checked_text(text: str, limits: TtsSettings) -> str:
    """The request's text, cleaned; InvalidInput when nothing is left to say or it is over the limit."""
    text = clean(text)
    if not text.strip():
        raise InvalidInput("text is empty: give something to say", reason=ErrorCode.EMPTY_TEXT)
    if len(text) > limits.max_text_chars:
        raise InvalidInput(
            f"text is {len(text)} characters; the limit is {limits.max_text_chars}",
            reason=ErrorCode.TEXT_TOO_LONG,
        )
    return text


def checked_output_rate(rate: int) -> int:
    """``rate`` when the service can encode at it; InvalidInput naming the range otherwise."""
    if not OUTPUT_RATES[0] <= rate <= OUTPUT_RATES[1]:
        check_rate(rate)  # names impossible rates
        raise InvalidInput(
            f"sample_rate_hz {rate} is not supported for output: {OUTPUT_RATES[0]} to {OUTPUT_RATES[1]} Hz",
            reason=ErrorCode.BAD_SAMPLE_RATE,
        )
    return rate


class TtsServicer(tts_pb2_grpc.TtsServicer):
    def __init__(self, service: TtsService) -> None:
        self.service = service

    def _job(self, request: tts_pb2.SynthesizeRequest) -> Job:
        limits = self.service.settings.tts
        text = checked_text(request.text, limits)
        voice = self.service.engine.info(request.voice)
        fmt = request.format
        encoding = fmt.encoding or PCM16
        if encoding not in (PCM16, WAV):
            raise InvalidInput(
                f"output encoding {encoding_name(encoding)} is not supported: use AUDIO_ENCODING_PCM16 or "
                "AUDIO_ENCODING_WAV",
                reason=ErrorCode.BAD_ENCODING,
            )
        if fmt.channels > 1:
            raise InvalidInput(
                f"channels {fmt.channels} is not supported: tts output is mono", reason=ErrorCode.BAD_CHANNELS
            )
        rate = checked_output_rate(fmt.sample_rate_hz or voice.sample_rate)
        options = self.service.engine.options(request.options, voice)
        spans = sentence_spans(text, max_chars=limits.max_sentence_chars)
        return Job(text, spans, voice, options, encoding, rate)

    async def _sentences(self, job: Job) -> AsyncIterator[tuple[int, tuple[int, int], np.ndarray, float]]:
        """Audio of each sentence at the output rate, with the seconds spent making it."""
        svc = self.service
        silence = np.zeros(int(job.options.sentence_silence * job.rate), dtype=np.float32)
        async with svc.worker.slot():
            for index, (start, end) in enumerate(job.spans):
                began = time.perf_counter()
                done = await svc.worker.call(svc.engine.synthesize, job.voice.name, job.text[start:end], job.options)
                logger.debug(
                    "sentence %d/%d: %.2f s of audio in %.3f s",
                    index + 1,
                    len(job.spans),
                    done.value.size / job.voice.sample_rate,
                    done.processing_seconds,
                )
                audio = resample(done.value, job.voice.sample_rate, job.rate)
                spoken = done.value.size / job.voice.sample_rate
                svc.metrics.audio_seconds.inc(spoken)
                if spoken > 0:
                    svc.metrics.real_time_factor.observe(done.processing_seconds / spoken)
                if index < len(job.spans) - 1 and silence.size:
                    audio = np.concatenate([audio, silence])
                yield index, (start, end), audio, time.perf_counter() - began
        # What the sentences' buffers took would otherwise stay with the process (server.memory).
        await asyncio.to_thread(release_free_memory)

    async def Synthesize(
        self, request: tts_pb2.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> tts_pb2.SynthesizeResponse:
        received = time.perf_counter()
        job = self._job(request)
        pieces: list[np.ndarray] = []
        processing = 0.0
        first = 0.0
        async for _, _, audio, seconds in self._sentences(job):
            pieces.append(audio)
            processing += seconds
            if not first:
                first = time.perf_counter() - received
                self.service.metrics.first_audio_seconds.observe(first)
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return tts_pb2.SynthesizeResponse(
            audio=job.encode(samples),
            format=job.format,
            voice=job.voice.name,
            timings=common_pb2.Timings(
                processing_seconds=processing,
                total_seconds=time.perf_counter() - received,
                audio_seconds=samples.size / job.rate,
                first_result_seconds=first,
            ),
        )

    async def SynthesizeStream(
        self, request: tts_pb2.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tts_pb2.SynthesisChunk]:
        received = time.perf_counter()
        job = self._job(request)
        processing = audio_seconds = first = 0.0
        last_index = len(job.spans) - 1
        async for index, (start, end), audio, seconds in self._sentences(job):
            processing += seconds
            audio_seconds += audio.size / job.rate
            if not first:
                first = time.perf_counter() - received
                self.service.metrics.first_audio_seconds.observe(first)
            chunk = tts_pb2.SynthesisChunk(
                sequence=index,
                audio=job.encode(audio),
                format=job.format,
                span=tts_pb2.TextSpan(start=start, end=end, text=job.text[start:end]),
                last=index == last_index,
            )
            if chunk.last:
                chunk.timings.CopyFrom(
                    common_pb2.Timings(
                        processing_seconds=processing,
                        total_seconds=time.perf_counter() - received,
                        audio_seconds=audio_seconds,
                        first_result_seconds=first,
                    )
                )
            yield chunk

    async def ListVoices(
        self, request: tts_pb2.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> tts_pb2.ListVoicesResponse:
        engine = self.service.engine
        return tts_pb2.ListVoicesResponse(
            voices=[
                tts_pb2.Voice(
                    name=v.name,
                    language=v.language,
                    sample_rate_hz=v.sample_rate,
                    is_default=v.name == engine.default,
                    num_speakers=v.num_speakers,
                    speakers=v.speakers,
                )
                for v in engine.infos.values()
            ]
        )


class TtsService:
    """piper behind the shared gRPC host."""

    name = "tts"
    grpc_names = ("voxstack.v1.Tts",)

    def __init__(self, settings: Settings, prepared: PreparedTts | None = None) -> None:
        self.settings = settings
        tts = settings.tts
        # A warm spare's engine, if it was built with these settings (else this start loads its own).
        self.prepared = prepared if prepared is not None and prepared.settings_json == tts.model_dump_json() else None
        self.engine = self.prepared.engine if self.prepared else PiperEngine(tts, settings.models_dir)
        self.metrics = TtsMetrics()
        self.worker = Worker("tts", tts.max_concurrency, tts.max_queue, self.metrics, job="synthesize")

    def register(self, server: grpc.aio.Server) -> None:
        tts_pb2_grpc.add_TtsServicer_to_server(TtsServicer(self), server)

    async def start(self) -> None:
        if self.prepared is not None:
            logger.info("tts engine kept from the warm spare: no voice load")
            return
        await asyncio.to_thread(self.engine.load)
        await asyncio.to_thread(self.engine.warm_up)

    async def close(self) -> None:
        self.worker.close()


def create(settings: Settings, prepared: PreparedTts | None = None) -> TtsService:
    return TtsService(settings, prepared)
