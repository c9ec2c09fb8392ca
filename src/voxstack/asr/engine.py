"""faster-whisper behind a small blocking API; the servicer runs it in threads."""

from __future__ import annotations

import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxstack.asr import SAMPLE_RATE
from voxstack.codes import ErrorCode
from voxstack.config import AsrSettings
from voxstack.errors import InvalidInput
from voxstack.models import WHISPER, ModelError, require

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

logger = logging.getLogger(__name__)

# faster-whisper's own threshold for "this decode repeats itself" (gzip ratio of the text).
LOOP_COMPRESSION_RATIO = 2.4


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float
    end: float
    probability: float


@dataclass
class Transcript:
    text: str = ""
    language: str = ""
    language_probability: float = 0.0
    words: list[WordTiming] = field(default_factory=list)
    confidence: float = 0.0
    start: float = 0.0
    end: float = 0.0


class WhisperEngine:
    """One loaded faster-whisper model; ``transcribe`` is thread-safe up to ``max_concurrency``."""

    def __init__(self, settings: AsrSettings, models_dir: Path) -> None:
        self.settings = settings
        self.models_dir = models_dir
        self._model: WhisperModel | None = None  # or its FittedWhisperModel subclass
        self._languages: frozenset[str] = frozenset()

    def model_path(self) -> Path:
        if self.settings.model is None:
            return require(WHISPER, self.models_dir)
        path = self.settings.model.expanduser()
        if not (path / "model.bin").is_file():
            raise ModelError(
                f"asr model folder {path} has no model.bin (set VOXSTACK_ASR__MODEL to a faster-whisper model folder)"
            )
        return path

    def load(self) -> None:
        """Load the model (blocking); raises ModelError with the fix when it is missing."""
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        from voxstack.asr.decoder_threads import SplitWhisper, load_decoder, runs_on_cpu
        from voxstack.asr.fitted_window import FittedWhisperModel

        path = self.model_path()
        fitted = self.settings.fit_window
        margin = self.settings.fit_margin_seconds
        model_class = partial(FittedWhisperModel, margin_seconds=margin) if fitted else WhisperModel
        # CTranslate2 reads 0 as its own default (4), which oversubscribes small machines.
        threads = self.settings.cpu_threads or os.cpu_count() or 1
        workers = self.settings.max_concurrency
        on_cpu = runs_on_cpu(self.settings.device)
        decoder_threads = (self.settings.decoder_threads or threads) if on_cpu else threads
        compute = self.settings.compute_type
        load = partial(load_decoder, str(path), threads=decoder_threads, workers=workers, compute_type=compute)
        with ThreadPoolExecutor(1) as pool:  # the decoder instance loads beside the main one
            decoder = pool.submit(load) if decoder_threads != threads else None
            self._model = model_class(
                str(path),
                device=self.settings.device,
                compute_type=compute,
                cpu_threads=threads,
                num_workers=workers,
                local_files_only=True,
            )
        if decoder is not None:
            self._model.model = SplitWhisper(self._model.model, decoder.result())
        self._languages = frozenset(_LANGUAGE_CODES)
        logger.info(
            "loaded whisper model from %s (%s, %s, %s window, %d encoder / %d decoder threads)",
            path,
            self.settings.device,
            self.settings.compute_type,
            "fitted" if fitted else "30 s",
            threads,
            decoder_threads,
        )

    def warm_up(self) -> None:
        # One real decode so the first caller does not pay for lazy initialisation.
        tone = 0.1 * np.sin(np.linspace(0, 2 * np.pi * 220, SAMPLE_RATE, dtype=np.float32))
        self.transcribe(threading.Event(), tone, language="en", vad_filter=False)

    @property
    def languages(self) -> list[str]:
        """The languages the loaded model decodes, sorted (an English-only model: just "en")."""
        model = self._model
        return sorted(model.supported_languages) if model is not None else sorted(self._languages)

    def language_for(self, requested: str) -> str | None:
        """The language to decode in: the request's, else the setting's; None = detect ("auto")."""
        language = (requested.strip() or self.settings.language).strip().lower()
        if language in ("", "auto"):
            return None
        if self._languages and language not in self._languages:
            raise InvalidInput(
                f"unknown language {language!r}: use an ISO 639-1 code such as 'en', or leave it empty to detect",
                reason=ErrorCode.BAD_LANGUAGE,
            )
        return language

    def transcribe(
        self,
        cancel: threading.Event,
        samples: np.ndarray,
        language: str | None,
        *,
        offset: float = 0.0,
        vad_filter: bool | None = None,
        word_timings: bool = True,
    ) -> Transcript:
        """Decode 16 kHz mono float32 ``samples``; stops between segments once ``cancel`` is set.
        ``word_timings``: align each word (an extra pass, about a tenth of the decode)."""
        assert self._model is not None, "load() first"
        decode = partial(self._decode, word_timings=word_timings)
        transcript, ratio = decode(cancel, samples, language, offset, vad_filter)
        if self.settings.fit_window and ratio > LOOP_COMPRESSION_RATIO and not cancel.is_set():
            # A fitted window can make Whisper repeat itself; the full one is the reference.
            logger.debug("decode looped (compression ratio %.1f): again with the full window", ratio)
            with self._model.full_window():
                transcript, _ = decode(cancel, samples, language, offset, vad_filter)
        return transcript

    def _decode(
        self,
        cancel: threading.Event,
        samples: np.ndarray,
        language: str | None,
        offset: float,
        vad_filter: bool | None,
        *,
        word_timings: bool,
    ) -> tuple[Transcript, float]:
        """The transcript and the highest compression ratio of its segments."""
        assert self._model is not None
        segments, info = self._model.transcribe(
            samples,
            language=language,
            beam_size=self.settings.beam_size,
            # No sampling fallback: the same audio always gives the same text,
            # and a hard utterance does not cost several extra decodes.
            temperature=0.0,
            word_timestamps=word_timings,
            condition_on_previous_text=False,
            vad_filter=self.settings.vad_filter if vad_filter is None else vad_filter,
        )
        texts: list[str] = []
        words: list[WordTiming] = []
        logprobs: list[float] = []
        ratio = 0.0
        for segment in segments:  # lazy: each step decodes one 30 s window
            texts.append(segment.text)
            logprobs.append(segment.avg_logprob)
            ratio = max(ratio, segment.compression_ratio)
            words += [
                WordTiming(w.word.strip(), offset + w.start, offset + w.end, w.probability)
                for w in segment.words or ()
                if w.word.strip()
            ]
            if cancel.is_set():
                logger.debug("decode cancelled after %d segments", len(texts))
                break
        if words:
            confidence = float(np.mean([w.probability for w in words]))
        elif logprobs:
            confidence = math.exp(float(np.mean(logprobs)))
        else:
            confidence = 0.0
        transcript = Transcript(
            text="".join(texts).strip(),
            language=info.language,
            language_probability=float(info.language_probability),
            words=words,
            confidence=confidence,
            start=offset,
            end=offset + samples.shape[0] / SAMPLE_RATE,
        )
        return transcript, ratio
