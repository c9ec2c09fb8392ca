"""The asr gRPC servicer and the Service the shared host runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from voxstack.asr import SAMPLE_RATE
from voxstack.asr.engine import WhisperEngine
from voxstack.asr.prepared import PreparedAsr
from voxstack.asr.results import result_message
from voxstack.asr.streaming import RecognitionStream
from voxstack.asr.turn import TurnModel
from voxstack.asr.vad import SileroStream, load_silero_session
from voxstack.audio import decode, resample
from voxstack.codes import ErrorCode
from voxstack.config import Settings
from voxstack.errors import InvalidInput, NotReady
from voxstack.metrics.catalog import AsrMetrics
from voxstack.server.feed import Feed
from voxstack.server.worker import Worker
from voxstack.v1 import asr_pb2, asr_pb2_grpc, common_pb2

logger = logging.getLogger(__name__)


class AsrServicer(asr_pb2_grpc.AsrServicer):
    def __init__(self, service: AsrService) -> None:
        self.service = service

    async def Recognize(
        self, request: asr_pb2.RecognizeRequest, context: grpc.aio.ServicerContext
    ) -> asr_pb2.RecognizeResponse:
        received = time.perf_counter()
        svc = self.service
        audio = decode(request.audio, request.config.format, max_seconds=svc.settings.asr.max_audio_seconds)
        language = svc.engine.language_for(request.config.language)
        samples = resample(audio.mono(), audio.sample_rate, SAMPLE_RATE)
        done = await svc.worker.run(svc.engine.transcribe, samples, language)
        svc.metrics.audio_seconds.labels("recognize").inc(audio.seconds)
        svc.metrics.decode_seconds.labels("recognize").observe(done.processing_seconds)
        if audio.seconds > 0:
            svc.metrics.real_time_factor.labels("recognize").observe(done.processing_seconds / audio.seconds)
        return asr_pb2.RecognizeResponse(
            result=result_message(done.value),
            timings=common_pb2.Timings(
                queue_seconds=done.queue_seconds,
                processing_seconds=done.processing_seconds,
                total_seconds=time.perf_counter() - received,
                audio_seconds=audio.seconds,
            ),
        )

    async def ListModels(
        self, request: asr_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> asr_pb2.ListModelsResponse:
        engine = self.service.engine
        model = asr_pb2.AsrModel(
            name=engine.model_path().name,
            languages=engine.languages,
            default_language=engine.settings.language or "auto",
        )
        return asr_pb2.ListModelsResponse(models=[model])

    async def StreamingRecognize(
        self,
        request_iterator: AsyncIterator[asr_pb2.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[asr_pb2.StreamingRecognizeResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("request") != "config":
            raise InvalidInput("the first StreamingRecognize message must be the config", reason=ErrorCode.CONFIG_FIRST)
        # None wakes the loop below when the server begins to stop.
        feed: Feed[asr_pb2.StreamingRecognizeResponse | None] = Feed()
        svc = self.service
        stream = RecognitionStream(
            first.config,
            engine=svc.engine,
            vad=SileroStream(svc.vad_session),
            turn=svc.turn,
            settings=svc.settings.asr,
            worker=svc.worker,
            emit=feed.put,
            metrics=svc.metrics,
        )
        svc.metrics.streams.inc()

        async def pump() -> None:
            # Reads the client's audio while results are being sent.
            async for request in request_iterator:
                kind = request.WhichOneof("request")
                if kind == "join_previous":
                    stream.join_previous()
                    continue
                if kind == "end_utterance":
                    end = request.end_utterance
                    await stream.end_utterance(end.utterance_index, end.end_seconds)
                    continue
                if kind != "audio":
                    raise InvalidInput("only the first message may be a config", reason=ErrorCode.CONFIG_FIRST)
                await stream.feed(request.audio)
            await stream.finish()

        async def watch_drain() -> None:
            await svc.draining.wait()
            feed.put(None)

        try:
            async with feed.running(pump, companions=[watch_drain]):
                async for item in feed:
                    if item is not None:
                        yield item
                    if svc.draining.is_set() and stream.idle:
                        # Between utterances (else the current one finishes first):
                        # the client loses nothing by opening a new stream.
                        raise NotReady("asr is restarting: open a new stream", reason=ErrorCode.RESTARTING)
        finally:
            svc.metrics.streams.dec()
            await stream.close()


class AsrService:
    """faster-whisper behind the shared gRPC host."""

    name = "asr"
    grpc_names = ("voxstack.v1.Asr",)

    def __init__(self, settings: Settings, prepared: PreparedAsr | None = None) -> None:
        self.settings = settings
        asr = settings.asr
        # A warm spare's engine, if it was built with these settings (else this start loads its own).
        self.prepared = prepared if prepared is not None and prepared.settings_json == asr.model_dump_json() else None
        self.engine = self.prepared.engine if self.prepared else WhisperEngine(asr, settings.models_dir)
        self.metrics = AsrMetrics()
        self.worker = Worker("asr", asr.max_concurrency, asr.max_queue, self.metrics, job="decode")
        self.vad_session: Any = self.prepared.vad_session if self.prepared else None  # loaded by start()
        self.turn: TurnModel | None = self.prepared.turn if self.prepared else None  # loaded by start()
        # Set when the server begins to stop: open streams end at their next
        # pause (RESTARTING) so that clients move to the new instance.
        self.draining = asyncio.Event()

    def drain(self) -> None:
        self.draining.set()

    def register(self, server: grpc.aio.Server) -> None:
        asr_pb2_grpc.add_AsrServicer_to_server(AsrServicer(self), server)

    async def start(self) -> None:
        if self.prepared is not None:
            logger.info("asr engine kept from the warm spare: no model load")
            return
        await asyncio.to_thread(self.engine.load)
        self.vad_session = await asyncio.to_thread(load_silero_session)
        self.turn = await asyncio.to_thread(TurnModel.for_settings, self.settings.asr, self.settings.models_dir)
        await asyncio.to_thread(self.engine.warm_up)

    async def close(self) -> None:
        self.worker.close()


def create(settings: Settings, prepared: PreparedAsr | None = None) -> AsrService:
    return AsrService(settings, prepared)
