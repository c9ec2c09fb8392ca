"""A Realtime session's settings: what ``session.update`` changes and ``response.create`` overrides, as the
Realtime API's session object shows them, and as the asr and llm take them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from voxstack.core.openai.speech import OPENAI_VOICES
from voxstack.core.realtime.formats import RATES
from voxstack.core.realtime.protocol import (
    AudioFormat,
    FunctionTool,
    ProtocolError,
    ResponseFields,
    SessionFields,
    ToolChoice,
    Transcription,
    TurnDetection,
)
from voxstack.errors import VoxError
from voxstack.toolcalls import check_tools
from voxstack.v1 import asr_pb2, common_pb2, llm_pb2

#: What a session starts with, as OpenAI's do: server VAD with its defaults (which map onto ours below).
DEFAULT_TURN_DETECTION = TurnDetection(type="server_vad")


def _checked_format(fmt: AudioFormat, param: str) -> str:
    if fmt.rate is not None and fmt.rate != RATES[fmt.type]:
        raise ProtocolError(f"{fmt.type} is taken at {RATES[fmt.type]} Hz, not {fmt.rate}", param=f"{param}.rate")
    return fmt.type


def _choice(choice: ToolChoice) -> str:
    return choice if isinstance(choice, str) else choice.name


def _tools(tools: list[FunctionTool], choice: str, param: str) -> tuple[llm_pb2.Tool, ...]:
    raw = [(t.name, t.description, json.dumps(t.parameters or {})) for t in tools]
    try:
        check_tools(raw, "auto" if choice in ("auto", "none", "required") else choice)
    except VoxError as exc:
        raise ProtocolError(str(exc), param=param) from None
    return tuple(llm_pb2.Tool(name=n, description=d, parameters=p) for n, d, p in raw)


@dataclass(frozen=True)
class RealtimeSettings:
    instructions: str
    voice: str = "alloy"  # as the client named it; OpenAI's names speak in the core's voice
    input_format: str = "audio/pcm"
    output_format: str = "audio/pcm"
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = field(default_factory=lambda: DEFAULT_TURN_DETECTION)
    modality: str = "audio"  # "audio" (with its transcript) or "text"
    tool_specs: tuple[FunctionTool, ...] = ()
    tools: tuple[llm_pb2.Tool, ...] = ()
    tool_choice: str = "auto"
    temperature: float | None = None
    max_output_tokens: int | str = "inf"

    @property
    def tts_voice(self) -> str:
        """The tts voice to speak in: "" (the core's) for OpenAI's names."""
        return "" if self.voice.lower() in OPENAI_VOICES else self.voice

    def updated(self, fields: SessionFields | ResponseFields, param: str = "session") -> RealtimeSettings:
        """These settings with what ``fields`` sets; ProtocolError naming the field that cannot be taken."""
        changes: dict[str, Any] = {}
        sets = fields.model_fields_set
        if "instructions" in sets and fields.instructions is not None:
            changes["instructions"] = fields.instructions
        if fields.output_modalities:
            changes["modality"] = fields.output_modalities[0]
        if fields.temperature is not None:
            changes["temperature"] = fields.temperature
        if fields.max_output_tokens is not None:
            changes["max_output_tokens"] = fields.max_output_tokens
        audio = fields.audio
        if audio is not None and audio.input is not None:
            if param == "response":
                raise ProtocolError("a response cannot change the input audio", param="response.audio.input")
            given = audio.input
            if given.format is not None:
                changes["input_format"] = _checked_format(given.format, f"{param}.audio.input.format")
            if "transcription" in given.model_fields_set:
                changes["transcription"] = given.transcription
            if "turn_detection" in given.model_fields_set:
                changes["turn_detection"] = given.turn_detection
        if audio is not None and audio.output is not None:
            if audio.output.format is not None:
                changes["output_format"] = _checked_format(audio.output.format, f"{param}.audio.output.format")
            if audio.output.voice is not None:
                changes["voice"] = audio.output.voice
        choice = _choice(fields.tool_choice) if fields.tool_choice is not None else self.tool_choice
        specs = tuple(fields.tools) if fields.tools is not None else self.tool_specs
        if fields.tools is not None or fields.tool_choice is not None:
            changes["tools"] = _tools(list(specs), choice, f"{param}.tools")
            changes["tool_specs"] = specs
            if choice not in ("auto", "none", "required") and choice not in {t.name for t in specs}:
                raise ProtocolError(f"tool_choice names {choice!r}, which is not a tool", param=f"{param}.tool_choice")
            changes["tool_choice"] = choice
        return replace(self, **changes)

    def recognition(self, language: str = "", *, words_end_pauses: bool = False) -> asr_pb2.RecognitionConfig:
        """The asr stream's config for server VAD: the session's threshold, padding and silence as our VAD's.
        ``semantic_vad`` is the turn model (where the asr has one); ``server_vad`` with a silence is that
        silence alone, and without one the asr's own turn detection (the turn model at pauses, where it has
        one: a turn ends sooner than on OpenAI's 500 ms, and a hesitation is not cut off). With
        ``words_end_pauses``, ``semantic_vad`` also asks for the speculative results whose words may end a
        pause the turn model did not (core/realtime/semantic_vad.py)."""
        detection = self.turn_detection or DEFAULT_TURN_DETECTION
        ending = "silence" if detection.silence_duration_ms else ""
        if detection.type == "semantic_vad":
            ending = "model"
        return asr_pb2.RecognitionConfig(
            format=common_pb2.AudioFormat(
                encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=RATES[self.input_format], channels=1
            ),
            language=(self.transcription.language if self.transcription and self.transcription.language else language),
            vad_threshold=detection.threshold or 0.0,
            vad_min_silence_ms=detection.silence_duration_ms or 0,
            vad_pad_ms=detection.prefix_padding_ms or 0,
            turn_detection=ending,
            speculative_results=words_end_pauses and detection.type == "semantic_vad",
        )

    def request(self, messages: list[llm_pb2.ChatMessage]) -> llm_pb2.GenerateRequest:
        """The llm's request for a response to ``messages`` in this session."""
        offered = self.tools if self.tool_choice != "none" else ()
        return llm_pb2.GenerateRequest(
            messages=messages, sampling=self.sampling(), tools=offered, tool_choice=self.tool_choice if offered else ""
        )

    def sampling(self) -> llm_pb2.SamplingParams:
        sampling = llm_pb2.SamplingParams()
        if self.temperature is not None:
            sampling.temperature = self.temperature
        if isinstance(self.max_output_tokens, int):
            sampling.max_tokens = self.max_output_tokens
        return sampling

    def as_object(self, session_id: str, model: str) -> dict[str, Any]:
        """The session as ``session.created`` and ``session.updated`` show it."""

        def fmt(kind: str) -> dict[str, Any]:
            return {"type": kind, "rate": RATES[kind]} if kind == "audio/pcm" else {"type": kind}

        detection = self.turn_detection
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": model,
            "instructions": self.instructions,
            "output_modalities": [self.modality],
            "audio": {
                "input": {
                    "format": fmt(self.input_format),
                    "transcription": self.transcription.model_dump(exclude_none=True) if self.transcription else None,
                    "turn_detection": detection.model_dump(exclude_none=True) if detection else None,
                    "noise_reduction": None,
                },
                "output": {"format": fmt(self.output_format), "voice": self.voice, "speed": 1.0},
            },
            "tools": [t.model_dump(exclude_none=True) for t in self.tool_specs],
            "tool_choice": self.tool_choice
            if self.tool_choice in ("auto", "none", "required")
            else {"type": "function", "name": self.tool_choice},
            "max_output_tokens": self.max_output_tokens,
        }
