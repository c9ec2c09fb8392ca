"""tts: real-time factor and time to the first audio chunk, one and ten sentences."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import grpc

from bench.common import Inputs, Report, median, service
from voxstack.config import load_settings
from voxstack.tts.engine import PiperEngine
from voxstack.v1 import common_pb2, tts_pb2
from voxstack.v1.tts_pb2_grpc import TtsStub

RUNS = 5
ONE = "The train to the city leaves from platform four in ten minutes."
TEN = " ".join(
    [
        "Good evening, and welcome to the news.",
        "Heavy rain is expected across the north tonight.",
        "Roads near the coast may flood after midnight.",
        "In sport, the home team won their third match in a row.",
        "The final score was two goals to one.",
        "Ticket prices for the new season go on sale on Monday.",
        "Scientists have found a new species of frog in the rainforest.",
        "It is bright green and smaller than a coin.",
        "Tomorrow will be dry and sunny in most places.",
        "That is all from us tonight, thank you for listening.",
    ]
)


def run(report: Report, inputs: Inputs) -> None:
    models_dir = inputs.models_dir
    settings = load_settings(models_dir=str(models_dir))
    engine = PiperEngine(settings.tts, settings.models_dir)
    engine.load()
    engine.warm_up()
    options = engine.options(tts_pb2.SynthesisOptions(), engine.infos[engine.default])
    first_sentence_in_process = median(
        [_timed(lambda: engine.synthesize(threading.Event(), engine.default, ONE, options)) for _ in range(RUNS)]
    )

    with (
        service("tts", {"VOXSTACK_MODELS_DIR": str(models_dir)}) as address,
        grpc.insecure_channel(address) as channel,
    ):
        stub = TtsStub(channel)
        fmt = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16)
        first_chunk: dict[str, float] = {}
        for label, text in (("1 sentence", ONE), ("10 sentences", TEN)):
            firsts, rtfs = [], []
            for _ in range(RUNS + 1):
                started = time.perf_counter()
                first: float | None = None
                last: tts_pb2.SynthesisChunk | None = None
                for chunk in stub.SynthesizeStream(tts_pb2.SynthesizeRequest(text=text, format=fmt), timeout=60):
                    first = first or time.perf_counter() - started
                    last = chunk
                total = time.perf_counter() - started
                assert first is not None and last is not None, "no audio came"
                firsts.append(first)
                rtfs.append(total / last.timings.audio_seconds)
            firsts, rtfs = firsts[1:], rtfs[1:]  # the first run warms the channel
            first_chunk[label] = median(firsts)
            report.add(
                "tts",
                f"{label}: time to first chunk",
                first_chunk[label],
                "s",
                "<= 0.15",
                f"median of {RUNS}",
            )
            report.add(
                "tts",
                f"{label}: RTF (stream total / audio)",
                median(rtfs),
                "x",
                "<= 0.1",
                f"median of {RUNS}",
            )
        report.add(
            "tts",
            "1 sentence: first chunk vs in-process synthesis",
            first_chunk["1 sentence"] / first_sentence_in_process,
            "ratio",
            "",
            f"in-process {first_sentence_in_process:.3f} s",
        )


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
