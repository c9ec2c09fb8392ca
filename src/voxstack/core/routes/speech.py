"""Speech in one direction at a time: ``/v1/transcribe``, ``/v1/voices``, ``/v1/speak``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from voxstack.audio import MAX_RATE
from voxstack.core.deps import PipelineDep, SettingsDep
from voxstack.core.errors import BACKEND_ERRORS, EDGE_ERRORS, documented_errors
from voxstack.core.inputs import Text, check_length
from voxstack.core.uploads import audio_format, read_body

router = APIRouter(tags=["speech"], responses=EDGE_ERRORS | BACKEND_ERRORS | documented_errors(415))


class SpeakRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(..., description="What to say.")
    voice: Text = Field("", max_length=200, description="A voice from /v1/voices; empty = the default.")
    sample_rate: int = Field(0, ge=0, le=MAX_RATE, description="0 = the voice's own rate.")


@router.post("/v1/transcribe")
async def transcribe(
    request: Request,
    pipeline: PipelineDep,
    content_type: Annotated[str | None, Header()] = None,
    language: Annotated[str, Query(max_length=16, description="ISO 639-1, 'auto', or empty for the default.")] = "",
) -> dict[str, Any]:
    """Audio (audio/wav or audio/L16; rate=N) in, text out."""
    fmt = audio_format(content_type)
    audio = await read_body(request)
    reply = await pipeline.transcribe(audio, fmt, language)
    result = reply.result
    return {
        "text": result.text,
        "language": result.language,
        "confidence": result.confidence,
        "words": [{"word": w.word, "start": w.start_seconds, "end": w.end_seconds} for w in result.words],
        "timings": {"decode": reply.timings.processing_seconds, "audio": reply.timings.audio_seconds},
    }


@router.get("/v1/voices")
async def voices(pipeline: PipelineDep) -> dict[str, Any]:
    """The voices tts offers (names for `voice` in /v1/speak and the WebSocket config)."""
    reply = await pipeline.voices()
    return {
        "voices": [
            {
                "name": v.name,
                "language": v.language,
                "sample_rate": v.sample_rate_hz,
                "default": v.is_default,
                "speakers": v.num_speakers,
            }
            for v in reply.voices
        ]
    }


@router.post("/v1/speak", response_class=Response, responses={200: {"content": {"audio/wav": {}}}})
async def speak(body: SpeakRequest, pipeline: PipelineDep, settings: SettingsDep) -> Response:
    """Text in, WAV out."""
    check_length("text", body.text, settings.core.max_text_chars)
    reply = await pipeline.speak(body.text, body.voice, body.sample_rate)
    return Response(reply.audio, media_type="audio/wav")
