"""asr: real-time factor and latency of Recognize, and end of speech to final for streaming."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np

from bench.common import Inputs, Report, median, realtime_chunks, service, speech16k
from voxstack.asr.engine import WhisperEngine
from voxstack.audio import float_to_pcm16
from voxstack.config import load_settings
from voxstack.testing.speech import wer  # the tests' word error rate
from voxstack.v1 import asr_pb2, asr_pb2_grpc, common_pb2

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Voice assistants turn speech into text, think of a reply, and speak it back.",
    "Please remind me to buy milk, eggs and bread on the way home tonight.",
    "The weather tomorrow will be sunny with a light breeze from the west.",
    "Our meeting has been moved to half past three in the large conference room.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
]
RUNS = 5
# One utterance of about five seconds, no sentence break inside.
UTTERANCE = "Please remind me to buy milk, eggs, bread, butter and some fresh fruit on the way home from work tonight"


def clip(voice: Any, seconds: float) -> np.ndarray:
    """About ``seconds`` of speech at 16 kHz, sentences with short pauses."""
    parts: list[np.ndarray] = []
    total = 0.0
    i = 0
    while total < seconds:
        speech = speech16k(voice, SENTENCES[i % len(SENTENCES)], trim=False)
        parts += [speech, np.zeros(4000, np.float32)]
        total += (speech.size + 4000) / 16000
        i += 1
    audio = np.concatenate(parts)
    return audio[: int(seconds * 16000)]


def recognize(stub: asr_pb2_grpc.AsrStub, audio: np.ndarray) -> tuple[float, float]:
    fmt = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=16000, channels=1)
    started = time.perf_counter()
    reply = stub.Recognize(
        asr_pb2.RecognizeRequest(config=asr_pb2.RecognitionConfig(format=fmt), audio=float_to_pcm16(audio)),
        timeout=120,
    )
    return time.perf_counter() - started, reply.timings.processing_seconds


def end_of_speech_to_final(stub: asr_pb2_grpc.AsrStub, speech: np.ndarray) -> float:
    """Stream silence, an utterance, silence in real time; seconds from the last speech chunk to the final."""
    pcm = float_to_pcm16(np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(24000, np.float32)]))
    marks: dict[str, float] = {}
    fmt = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=16000, channels=1)

    def requests() -> Iterator[asr_pb2.StreamingRecognizeRequest]:
        yield asr_pb2.StreamingRecognizeRequest(config=asr_pb2.RecognitionConfig(format=fmt))
        for chunk in realtime_chunks(pcm, 8000 + speech.size, marks):
            yield asr_pb2.StreamingRecognizeRequest(audio=chunk)

    for reply in stub.StreamingRecognize(requests(), timeout=120):
        if reply.WhichOneof("event") == "final":
            marks["final"] = time.perf_counter()  # the last final is the one that ends the speech
    return marks["final"] - marks["speech_end"]


def sentence_wer(engine: WhisperEngine, voice: Any) -> float:
    """Word error rate over all of SENTENCES, each synthesised and decoded alone."""
    errors = words = 0.0
    for sentence in SENTENCES:
        text = engine.transcribe(threading.Event(), speech16k(voice, sentence, trim=False), "en").text
        n = len(sentence.split())
        errors += wer(sentence, text) * n
        words += n
    return errors / words


def run(report: Report, inputs: Inputs) -> None:
    voice, models_dir = inputs.voice, inputs.models_dir
    clips = {5: clip(voice, 5), 30: clip(voice, 30)}

    # Reference: the engine in this process, no gRPC, same settings; and the
    # same engine with Whisper's fixed 30 s encoder window instead of a fitted one.
    in_process: dict[str, dict[int, float]] = {}
    for window, fitted in (("fitted", True), ("full", False)):
        settings = load_settings(models_dir=str(models_dir), asr={"fit_window": fitted})
        engine = WhisperEngine(settings.asr, settings.models_dir)
        engine.load()
        engine.warm_up()
        in_process[window] = {}
        for seconds, audio in clips.items():
            times = []
            for _ in range(RUNS):
                started = time.perf_counter()
                engine.transcribe(threading.Event(), audio, "en")
                times.append(time.perf_counter() - started)
            in_process[window][seconds] = median(times)
        report.add(
            "asr",
            f"word error rate, {window} window",
            sentence_wer(engine, voice),
            "",
            "",
            f"{len(SENTENCES)} sentences, in-process",
        )
        del engine
    for seconds in clips:
        report.add(
            "asr",
            f"Recognize {seconds} s: fitted / full window, in-process",
            in_process["fitted"][seconds] / in_process["full"][seconds],
            "ratio",
            "",
            f"full window {in_process['full'][seconds]:.3f} s",
        )

    with (
        service("asr", {"VOXSTACK_MODELS_DIR": str(models_dir)}) as address,
        grpc.insecure_channel(address) as channel,
    ):
        stub = asr_pb2_grpc.AsrStub(channel)
        recognize(stub, clips[5])
        for seconds, audio in clips.items():
            results = [recognize(stub, audio) for _ in range(RUNS)]
            latency = median([r[0] for r in results])
            report.add("asr", f"Recognize {seconds} s: RTF", latency / seconds, "x", "<= 0.15", f"median of {RUNS}")
            report.add("asr", f"Recognize {seconds} s: latency", latency, "s")
            report.add(
                "asr",
                f"Recognize {seconds} s: vs in-process engine",
                latency / in_process["fitted"][seconds],
                "ratio",
                "",
                f"in-process {in_process['fitted'][seconds]:.3f} s",
            )
        # A new synthesis each run: piper's noise makes each a little different,
        # and the time to the final depends on where the VAD sees the end.
        utterances = [speech16k(voice, UTTERANCE) for _ in range(RUNS)]
        end_of_speech_to_final(stub, utterances[0])  # warm-up
        waits = [end_of_speech_to_final(stub, u) for u in utterances for _ in range(2)]
        utterance = utterances[0]
        report.add(
            "asr",
            f"Streaming {utterance.size / 16000:.1f} s utterance: end of speech to final",
            median(waits),
            "s",
            "<= 0.4",
            f"median of {len(waits)} ({RUNS} syntheses x 2), max {max(waits):.3f}",
        )
