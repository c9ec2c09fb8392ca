"""A scripted tts: the real Tts proto, a tone for each sentence, at the rate and encoding asked.

Each sentence (split as the real service splits them) becomes a 220 Hz tone
of ``seconds_per_char`` per character at the voice's ``rate`` (resampled to
the requested rate), after ``delay`` seconds for the first and
``chunk_delay`` for each further one. Text and output rate are checked by the
real service's own checks, voices and encodings with the same reasons, so the
core's handling of those errors is tested too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np

from voxstack.audio import PCM16, WAV, float_to_pcm16, resample, wav_bytes
from voxstack.codes import ErrorCode
from voxstack.config import Settings
from voxstack.errors import InvalidInput
from voxstack.metrics.catalog import TtsMetrics
from voxstack.server.worker import Worker
from voxstack.testing.fakes.script import die, read_section, record_call, scripted_error
from voxstack.text import clean, sentence_spans
from voxstack.tts.service import checked_output_rate, checked_text
from voxstack.v1 import common_pb2, tts_pb2, tts_pb2_grpc

DEFAULT_VOICE = "fake-voice"
TONE_HZ = 220.0


def voices(section: dict[str, Any]) -> list[str]:
    return [str(v) for v in section.get("voices") or [DEFAULT_VOICE]]


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


class FakeTtsServicer(tts_pb2_grpc.TtsServicer):
    def __init__(self, service: FakeTtsService) -> None:
        self.service = service

    def _check(self, request: tts_pb2.SynthesizeRequest, section: dict[str, Any]) -> tuple[str, str, int, int]:
        """(text, voice, encoding, rate) of a valid request; InvalidInput as the real service words it."""
        text = checked_text(request.text, self.service.settings.tts)
        known = voices(section)
        voice = request.voice or known[0]
        if voice not in known:
            raise InvalidInput(
                f"unknown voice {voice!r}: known voices are {', '.join(known)}", reason=ErrorCode.UNKNOWN_VOICE
            )
        encoding = request.format.encoding or PCM16
        if encoding not in (PCM16, WAV):
            raise InvalidInput("output encoding must be PCM16 or WAV", reason=ErrorCode.BAD_ENCODING)
        rate = checked_output_rate(request.format.sample_rate_hz or int(section.get("rate", 22_050)))
        return text, voice, encoding, rate

    async def _sentences(self, request: tts_pb2.SynthesizeRequest) -> AsyncIterator[tuple[int, int, int, bytes]]:
        """(start, end, index, encoded audio) per sentence."""
        section = read_section("tts")
        text, voice, encoding, rate = self._check(request, section)
        record_call("tts", "Synthesize", {"text": text, "voice": voice, "sample_rate": rate})
        spans = sentence_spans(text, max_chars=self.service.settings.tts.max_sentence_chars)
        native = int(section.get("rate", 22_050))
        async with self.service.worker.slot():
            await asyncio.sleep(float(section.get("delay", 0.0)))
            error = scripted_error(section.get("error"))
            if error is not None:
                raise error
            for index, (start, end) in enumerate(spans):
                if index:
                    await asyncio.sleep(float(section.get("chunk_delay", 0.0)))
                if section.get("die_after_chunks") == index:
                    die()
                seconds = (end - start) * float(section.get("seconds_per_char", 0.02))
                pcm = float_to_pcm16(resample(tone(seconds, native), native, rate))
                yield start, end, index, wav_bytes(pcm, rate) if encoding == WAV else pcm

    async def Synthesize(
        self, request: tts_pb2.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> tts_pb2.SynthesizeResponse:
        received = time.perf_counter()
        encoding = request.format.encoding or PCM16
        rate = request.format.sample_rate_hz or int(read_section("tts").get("rate", 22_050))
        # Sentences come PCM16 here and the whole reply is wrapped once.
        pcm_request = tts_pb2.SynthesizeRequest()
        pcm_request.CopyFrom(request)
        pcm_request.format.encoding = PCM16
        audio = b"".join([pcm async for _, _, _, pcm in self._sentences(pcm_request)])
        seconds = len(audio) / 2 / rate
        if encoding == WAV:
            audio = wav_bytes(audio, rate)
        return tts_pb2.SynthesizeResponse(
            audio=audio,
            format=common_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate, channels=1),
            voice=request.voice or voices(read_section("tts"))[0],
            timings=common_pb2.Timings(total_seconds=time.perf_counter() - received, audio_seconds=seconds),
        )

    async def SynthesizeStream(
        self, request: tts_pb2.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tts_pb2.SynthesisChunk]:
        encoding = request.format.encoding or PCM16
        rate = request.format.sample_rate_hz or int(read_section("tts").get("rate", 22_050))
        received = time.perf_counter()
        previous: tts_pb2.SynthesisChunk | None = None
        async for start, end, index, audio in self._sentences(request):
            if previous is not None:
                yield previous
            previous = tts_pb2.SynthesisChunk(
                sequence=index,
                audio=audio,
                format=common_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate, channels=1),
                span=tts_pb2.TextSpan(start=start, end=end, text=clean(request.text)[start:end]),
            )
        if previous is not None:
            previous.last = True
            previous.timings.total_seconds = time.perf_counter() - received
            yield previous

    async def ListVoices(
        self, request: tts_pb2.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> tts_pb2.ListVoicesResponse:
        section = read_section("tts")
        rate = int(section.get("rate", 22_050))
        names = voices(section)
        return tts_pb2.ListVoicesResponse(
            voices=[
                tts_pb2.Voice(name=n, language="en_US", sample_rate_hz=rate, is_default=i == 0, num_speakers=1)
                for i, n in enumerate(names)
            ]
        )


class FakeTtsService:
    """The scripted tts behind the shared gRPC host."""

    name = "tts"
    grpc_names = ("voxstack.v1.Tts",)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = TtsMetrics()
        self.worker = Worker("tts", settings.tts.max_concurrency, settings.tts.max_queue, self.metrics)

    def register(self, server: grpc.aio.Server) -> None:
        tts_pb2_grpc.add_TtsServicer_to_server(FakeTtsServicer(self), server)

    async def start(self) -> None:
        await asyncio.sleep(float(read_section("tts").get("load_seconds", 0.0)))

    async def close(self) -> None:
        return None


def create(settings: Settings) -> FakeTtsService:
    """The factory the fake is served by (``FACTORIES["tts"]``)."""
    return FakeTtsService(settings)
