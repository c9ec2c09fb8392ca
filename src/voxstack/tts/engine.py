"""piper voices behind a small blocking API; the servicer runs it in threads."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxstack.codes import ErrorCode
from voxstack.config import TtsSettings
from voxstack.errors import InvalidInput
from voxstack.models import VOICE, ModelError, require
from voxstack.v1 import tts_pb2

logger = logging.getLogger(__name__)

# Option bounds: outside them piper makes noise or nothing.
LENGTH_SCALE = (0.2, 5.0)
NOISE = (0.0, 2.0)
SENTENCE_SILENCE = (0.0, 5.0)


@dataclass(frozen=True)
class VoiceInfo:
    name: str
    language: str
    sample_rate: int
    num_speakers: int
    path: Path
    speakers: tuple[str, ...] = ()  # names by speaker id, when the voice names them


@dataclass(frozen=True)
class Options:
    """Validated synthesis options of one request."""

    length_scale: float | None
    noise_scale: float | None
    noise_w: float | None
    speaker_id: int | None
    sentence_silence: float


def _in_range(name: str, value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    if not low <= value <= high:
        raise InvalidInput(f"options.{name} {value:g} is out of range {low:g} to {high:g}", reason=ErrorCode.BAD_OPTION)
    return value


class ShrinkingSession:
    """A voice's ONNX session whose memory arena gives back, after each run, what the run grew it by.

    onnxruntime keeps what its CPU arena once took, and each sentence of another length takes more
    (a few long ones took a process to gigabytes); shrinking at the end of a run keeps the process at
    its size, at no measurable cost per sentence. piper runs ``session.run(None, inputs)`` with no
    run options, so this stands in for its session.
    """

    def __init__(self, session: Any) -> None:
        import onnxruntime

        self._session = session
        self._options = onnxruntime.RunOptions()
        self._options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names: Any, input_feed: Any, run_options: Any = None) -> Any:
        return self._session.run(output_names, input_feed, run_options or self._options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def _load_voice(path: Path) -> Any:
    """A piper voice as ``PiperVoice.load`` makes it, but with its own session options."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    # Threads waiting for work sleep rather than spin: the tts shares the cores with the asr and the llm,
    # and a spinning thread takes the time their threads need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text(encoding="utf-8")))
    return PiperVoice(session=ShrinkingSession(session), config=config)


class PiperEngine:
    """The configured piper voices, loaded once."""

    def __init__(self, settings: TtsSettings, models_dir: Path) -> None:
        self.settings = settings
        self.models_dir = models_dir
        self._voices: dict[str, Any] = {}
        self.infos: dict[str, VoiceInfo] = {}
        self.default = ""

    def voice_paths(self) -> list[Path]:
        if not self.settings.voices:
            spec = VOICE
            return [require(spec, self.models_dir) / spec.files[0].name]
        paths = [p.expanduser() for p in self.settings.voices]
        for path in paths:
            if not path.is_file() or not Path(f"{path}.json").is_file():
                raise ModelError(f"tts voice {path} needs both {path.name} and {path.name}.json (VOXSTACK_TTS__VOICES)")
        return paths

    def load(self) -> None:
        for path in self.voice_paths():
            voice = _load_voice(path)
            name = path.name.removesuffix(".onnx")
            language = _language_code(path) or voice.config.espeak_voice
            self._voices[name] = voice
            config = voice.config
            speakers = tuple(sorted(config.speaker_id_map, key=config.speaker_id_map.__getitem__))
            self.infos[name] = VoiceInfo(name, language, config.sample_rate, config.num_speakers, path, speakers)
            logger.info("loaded voice %s (%s, %d Hz)", name, language, voice.config.sample_rate)
        wanted = self.settings.default_voice
        if wanted and wanted not in self._voices:
            raise ModelError(
                f"VOXSTACK_TTS__DEFAULT_VOICE {wanted!r} is not a configured voice: {', '.join(self._voices)}"
            )
        self.default = wanted or next(iter(self._voices))

    def info(self, name: str) -> VoiceInfo:
        """The voice a request asked for ('' = the default)."""
        chosen = name or self.default
        if chosen not in self.infos:
            raise InvalidInput(
                f"unknown voice {name!r}: available voices are {', '.join(self.infos)}",
                reason=ErrorCode.UNKNOWN_VOICE,
            )
        return self.infos[chosen]

    def options(self, request: tts_pb2.SynthesisOptions, voice: VoiceInfo) -> Options:
        speaker = request.speaker_id if request.HasField("speaker_id") else None
        if speaker is not None and speaker >= max(1, voice.num_speakers):
            raise InvalidInput(
                f"options.speaker_id {speaker} does not exist: voice {voice.name} has {voice.num_speakers} speaker(s)",
                reason=ErrorCode.BAD_OPTION,
            )
        return Options(
            length_scale=_in_range("length_scale", request.length_scale, LENGTH_SCALE)
            if request.HasField("length_scale")
            else None,
            noise_scale=_in_range("noise_scale", request.noise_scale, NOISE)
            if request.HasField("noise_scale")
            else None,
            noise_w=_in_range("noise_w", request.noise_w, NOISE) if request.HasField("noise_w") else None,
            speaker_id=speaker,
            sentence_silence=_in_range("sentence_silence_seconds", request.sentence_silence_seconds, SENTENCE_SILENCE)
            if request.HasField("sentence_silence_seconds")
            else self.settings.sentence_silence,
        )

    def synthesize(self, cancel: threading.Event, voice: str, text: str, options: Options) -> np.ndarray:
        """One sentence as float32 mono at the voice's rate (empty if there is nothing to say)."""
        from piper import SynthesisConfig

        config = SynthesisConfig(
            speaker_id=options.speaker_id,
            length_scale=options.length_scale,
            noise_scale=options.noise_scale,
            noise_w_scale=options.noise_w,
        )
        parts = []
        for chunk in self._voices[voice].synthesize(text, syn_config=config):
            parts.append(chunk.audio_float_array)
            if cancel.is_set():
                break
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def warm_up(self) -> None:
        for name in self._voices:
            self.synthesize(
                threading.Event(), name, "Hello.", self.options(tts_pb2.SynthesisOptions(), self.infos[name])
            )


def _language_code(path: Path) -> str:
    config = json.loads(Path(f"{path}.json").read_text(encoding="utf-8"))
    return str(config.get("language", {}).get("code", ""))
