"""hearing: does the conversation path hear as well as the plain model does on the whole clip?

The same clips go three ways with the same Whisper model and beam size 1:
the plain path (faster-whisper's own defaults on the whole clip with its full
30 s window, as Pipecat's Whisper service calls it), the asr engine on the
whole clip (fitted window, no sampling fallback), and the conversation path
(the streaming recogniser in-process with the default settings: VAD
segmentation and padding, the speculative decode at the first pause, the
turn model). Clips: questions from bench/data/questions.json said by the piper
voice and by three espeak-ng voices (US, UK, US female), when espeak-ng is
installed. Word error rates are computed after numbers are written as digits
("seven" and "7" are the same answer).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import threading
import wave

import numpy as np
from faster_whisper import WhisperModel

from bench.common import DATA_DIR, Inputs, Report, speech16k
from voxstack.asr.engine import WhisperEngine
from voxstack.asr.streaming import RecognitionStream
from voxstack.asr.turn import TurnModel
from voxstack.asr.vad import SileroStream, load_silero_session
from voxstack.audio import float_to_pcm16, resample
from voxstack.config import Settings, load_settings
from voxstack.server.worker import Worker
from voxstack.testing.answers import words
from voxstack.testing.speech import wer
from voxstack.v1 import asr_pb2, common_pb2

QUESTIONS = DATA_DIR / "questions.json"
COUNT = 20  # questions per voice
ESPEAK_VOICES = (("en-us", 175), ("en-gb", 160), ("en-us+f3", 150))  # voice, words per minute


def espeak(text: str, voice: str, rate: int) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", f.name, text], check=True)
        with wave.open(f.name) as w:
            rate_hz = w.getframerate()
            audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    return resample(audio, rate_hz, 16_000).astype(np.float32)


def _conversation(settings: Settings, engine: WhisperEngine, turn: TurnModel | None, audio: np.ndarray) -> str:
    """The finals of the streaming recogniser fed the clip, with silence around it, in 20 ms chunks."""
    events: list[asr_pb2.StreamingRecognizeResponse] = []
    config = asr_pb2.RecognitionConfig(
        format=common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=16_000, channels=1)
    )
    clip = np.concatenate([np.zeros(8000, np.float32), audio, np.zeros(24_000, np.float32)])

    async def run() -> None:
        worker = Worker("asr", 1, 4, job="decode")
        stream = RecognitionStream(
            config,
            engine=engine,
            vad=SileroStream(load_silero_session()),
            turn=turn,
            settings=settings.asr,
            worker=worker,
            emit=events.append,
        )
        pcm = float_to_pcm16(clip)
        for i in range(0, len(pcm), 640):
            await stream.feed(pcm[i : i + 640])
        await stream.finish()
        await stream.close()
        worker.close()

    asyncio.run(run())
    return " ".join(e.final.result.text for e in events if e.WhichOneof("event") == "final")


def _wer(reference: str, heard: str) -> float:
    return wer(" ".join(words(reference)), " ".join(words(heard)))


def run(report: Report, inputs: Inputs) -> None:
    settings = load_settings(models_dir=str(inputs.models_dir))
    engine = WhisperEngine(settings.asr, inputs.models_dir)
    engine.load()
    # The plain path: faster-whisper as it comes, on the same model files.
    model = WhisperModel(str(engine.model_path()), device="cpu", compute_type=settings.asr.compute_type)
    turn = TurnModel.for_settings(settings.asr, inputs.models_dir)
    plain_set = json.loads(QUESTIONS.read_text())["plain"]
    questions = [item["q"] for item in plain_set[:: max(1, len(plain_set) // COUNT)][:COUNT]]
    voices: list[tuple[str, tuple[str, int] | None]] = [("piper joe", None)]
    if shutil.which("espeak-ng"):
        voices += [(f"espeak-ng {voice}", (voice, rate)) for voice, rate in ESPEAK_VOICES]
    scores: dict[str, list[float]] = {"plain": [], "engine": [], "conversation": []}
    worse: list[str] = []
    for name, espeak_voice in voices:
        for question in questions:
            audio = speech16k(inputs.voice, question) if espeak_voice is None else espeak(question, *espeak_voice)
            segments, _ = model.transcribe(audio, language="en", beam_size=1)
            plain = " ".join(s.text.strip() for s in segments)
            whole = engine.transcribe(threading.Event(), audio, "en", vad_filter=False, word_timings=False).text
            heard = _conversation(settings, engine, turn, audio)
            for path, text in (("plain", plain), ("engine", whole), ("conversation", heard)):
                scores[path].append(_wer(question, text))
            if scores["conversation"][-1] > scores["plain"][-1]:
                worse.append(f"{name}: {question} -> {heard} (plain: {plain})")
    clips = len(scores["plain"])
    note = f"{clips} clips: {len(questions)} questions x {', '.join(n for n, _ in voices)}"
    for path, values in scores.items():
        report.add("hearing", f"{path}: word error rate", float(np.mean(values)), "", "<= plain", note)
        report.add("hearing", f"{path}: clips with an error", sum(v > 0 for v in values), "", "", f"of {clips}")
    report.add("hearing", "conversation worse than plain", len(worse), "clips", "", " | ".join(worse)[:2000])
