"""Speech in one direction at a time: ``/v1/transcribe``, ``/v1/voices``, ``/v1/speak``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from voxstack.core.deps import PipelineDep, SettingsDep
from voxstack.core.uploads import audio_format, read_body

router = APIRouter(tags=["speech"])


class SpeakRequest(BaseModel):
    text: str
    voice: str = ""
    sample_rate: int = Field(0, ge=0, description="0 = the voice's own rate.")


@router.post("/v1/transcribe")
async def transcribe(
    request: Request,
    pipeline: PipelineDep,
    settings: SettingsDep,
    content_type: Annotated[str | None, Header()] = None,
    language: Annotated[str, Query(description="ISO 639-1, 'auto', or empty for the default.")] = "",
) -> dict[str, Any]:
    """Audio (audio/wav or audio/L16; rate=N) in, text out."""
    fmt = audio_format(content_type)
    audio = await read_body(request, settings.core.max_upload_bytes)
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
async def speak(body: SpeakRequest, pipeline: PipelineDep) -> Response:
    """Text in, WAV out."""
    reply = await pipeline.speak(body.text, body.voice, body.sample_rate)
    return Response(reply.audio, media_type="audio/wav")
