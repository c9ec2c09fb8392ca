"""``POST /v1/audio/speech``: OpenAI's text to speech on the tts service, streamed sentence by sentence.

OpenAI's voice names (alloy, echo, ...) choose the tts default voice, so apps
written for OpenAI work; a tts voice's own name chooses it. ``speed`` becomes
piper's length scale. With ``stream_format: sse`` the audio comes as
``speech.audio.delta`` events (base64) and a ``speech.audio.done``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from voxstack.codes import OpenAICode
from voxstack.core.deps import PipelineDep, SettingsDep
from voxstack.core.inputs import Text, check_length
from voxstack.core.openai.encode import MEDIA_TYPES, RATES, Encoder, Format
from voxstack.core.openai.errors import OPENAI_ERRORS, OpenAIRoute, stream_error
from voxstack.core.openai.models import resolve
from voxstack.errors import InvalidInput, VoxError
from voxstack.v1 import common_pb2, tts_pb2

router = APIRouter(tags=["openai"], route_class=OpenAIRoute, responses=OPENAI_ERRORS)

OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse", "marin", "cedar"}
)
_ANSWERS: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The audio in `response_format`, streamed; or `speech.audio.delta` events (with sse).",
        "content": {
            **{media: {} for media in MEDIA_TYPES.values()},
            "text/event-stream": {"schema": {"type": "object"}},
        },
    }
}


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr
    input: Text = Field(..., min_length=1)
    voice: StrictStr = Field(..., max_length=128)
    response_format: Format = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"
    instructions: str | None = Field(None, max_length=4096)  # accepted; piper voices take no instructions


@router.post("/v1/audio/speech", response_model=None, responses=_ANSWERS)
async def speech(body: SpeechRequest, pipeline: PipelineDep, settings: SettingsDep) -> StreamingResponse:
    """OpenAI's speech: the audio of `input`, streamed as each sentence is synthesised."""
    resolve(settings, body.model, "tts")
    check_length("input", body.input, settings.core.max_text_chars)
    if not body.input.strip():
        raise InvalidInput("input is empty", reason=OpenAICode.EMPTY_INPUT)
    voice = "" if body.voice.lower() in OPENAI_VOICES else body.voice
    rate = RATES.get(body.response_format, 0)
    request = tts_pb2.SynthesizeRequest(
        text=body.input,
        voice=voice or settings.core.voice,
        format=common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=rate),
        options=tts_pb2.SynthesisOptions(length_scale=1.0 / body.speed),
    )
    chunks = pipeline.synthesize_stream(request)
    try:
        first = await anext(chunks)  # fail before the 200: unknown voice, tts unreachable
    except StopAsyncIteration:
        raise InvalidInput("input has nothing to speak", reason=OpenAICode.NOTHING_TO_SPEAK) from None
    encoder = Encoder(body.response_format, first.format.sample_rate_hz)

    async def audio() -> AsyncIterator[bytes]:
        chunk = first
        while True:
            data = encoder.feed(chunk.audio)
            if data:
                yield data
            if chunk.last:
                break
            chunk = await anext(chunks)
        if tail := encoder.finish():
            yield tail

    if body.stream_format == "audio":
        return StreamingResponse(audio(), media_type=MEDIA_TYPES[body.response_format])

    async def events() -> AsyncIterator[str]:
        try:
            async for data in audio():
                delta = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
                yield f"data: {json.dumps(delta)}\n\n"
        except VoxError as exc:  # after the 200: the stream says what went wrong, as the chat stream does
            yield stream_error(exc, detail=settings.error_detail)
            return
        done = {"type": "speech.audio.done", "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}}
        yield f"data: {json.dumps(done)}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
