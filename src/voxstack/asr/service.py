"""The asr gRPC servicer and the Service the shared host runs."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import grpc

from voxstack.asr.engine import SAMPLE_RATE, WhisperEngine
from voxstack.asr.streaming import RecognitionStream, result_message
from voxstack.asr.vad import SileroStream, load_silero_session
from voxstack.audio import decode, resample
from voxstack.config import Settings
from voxstack.errors import InvalidInput, NotReady
from voxstack.server.limiter import Limiter, run_in_thread
from voxstack.v1 import asr_pb2, asr_pb2_grpc, common_pb2

logger = logging.getLogger(__name__)

_DONE = object()
_DRAINING = object()  # put in a stream's queue when the server begins to stop


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
        cancel = threading.Event()
        async with svc.limiter.slot() as queued:
            began = time.perf_counter()
            transcript = await run_in_thread(
                svc.executor, svc.engine.transcribe, cancel, samples, language, cancel=cancel
            )
            processing = time.perf_counter() - began
        return asr_pb2.RecognizeResponse(
            result=result_message(transcript),
            timings=common_pb2.Timings(
                queue_seconds=queued,
                processing_seconds=processing,
                total_seconds=time.perf_counter() - received,
                audio_seconds=audio.seconds,
            ),
        )

    async def StreamingRecognize(
        self,
        request_iterator: AsyncIterator[asr_pb2.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[asr_pb2.StreamingRecognizeResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("request") != "config":
            raise InvalidInput("the first StreamingRecognize message must be the config", reason="CONFIG_FIRST")
        out: asyncio.Queue[object] = asyncio.Queue()
        svc = self.service
        stream = RecognitionStream(
            first.config,
            engine=svc.engine,
            vad=SileroStream(svc.vad_session),
            settings=svc.settings.asr,
            limiter=svc.limiter,
            executor=svc.executor,
            emit=out.put_nowait,
        )

        async def pump() -> None:
            # Reads the client's audio while results are being sent.
            try:
                async for request in request_iterator:
                    if request.WhichOneof("request") != "audio":
                        raise InvalidInput("only the first message may be a config", reason="CONFIG_FIRST")
                    await stream.feed(request.audio)
                await stream.finish()
            except BaseException as exc:  # handed to the sender, which raises it
                out.put_nowait(exc)
            finally:
                out.put_nowait(_DONE)

        async def watch_drain() -> None:
            await svc.draining.wait()
            out.put_nowait(_DRAINING)

        task = asyncio.create_task(pump())
        draining = asyncio.create_task(watch_drain())
        try:
            while (item := await out.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                if item is not _DRAINING:  # the marker only wakes this loop
                    yield item
                if svc.draining.is_set() and stream.idle:
                    # Between utterances (else the current one finishes first):
                    # the client loses nothing by opening a new stream.
                    raise NotReady("asr is restarting: open a new stream", reason="RESTARTING")
        finally:
            draining.cancel()
            task.cancel()
            await asyncio.wait([task])
            await stream.close()


class AsrService:
    """faster-whisper behind the shared gRPC host."""

    name = "asr"
    grpc_names = ("voxstack.v1.Asr",)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        asr = settings.asr
        self.engine = WhisperEngine(asr, settings.models_dir)
        self.limiter = Limiter("asr", asr.max_concurrency, asr.max_queue)
        self.executor = ThreadPoolExecutor(max_workers=asr.max_concurrency, thread_name_prefix="asr")
        self.vad_session = None
        # Set when the server begins to stop: open streams end at their next
        # pause (RESTARTING) so that clients move to the new instance.
        self.draining = asyncio.Event()

    def drain(self) -> None:
        self.draining.set()

    def register(self, server: grpc.aio.Server) -> None:
        asr_pb2_grpc.add_AsrServicer_to_server(AsrServicer(self), server)

    async def start(self) -> None:
        await asyncio.to_thread(self.engine.load)
        self.vad_session = await asyncio.to_thread(load_silero_session)
        await asyncio.to_thread(self.engine.warm_up)

    async def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def create(settings: Settings) -> AsrService:
    return AsrService(settings)
