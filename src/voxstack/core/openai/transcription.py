"""``POST /v1/audio/transcriptions``: OpenAI's speech to text on the asr service.

The uploaded file is decoded by ``decode`` whatever its container. Formats:
``json``, ``text``, ``verbose_json`` (segments, and words with
``timestamp_granularities[]=word``), ``srt``, ``vtt``. With ``stream=true`` the
asr's streaming recognition runs over the audio and each utterance's final text
goes out as a ``transcript.text.delta`` event as soon as it is decoded, then
``transcript.text.done``. ``prompt`` and ``temperature`` are accepted and unused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from voxstack.core.deps import BackendsDep, PipelineDep, SettingsDep
from voxstack.core.openai.decode import RATE, to_pcm16
from voxstack.core.openai.errors import OPENAI_ERRORS, OpenAIRoute, stream_error
from voxstack.core.openai.models import resolve
from voxstack.core.openai.subtitles import segments, srt, vtt
from voxstack.errors import VoxError
from voxstack.v1 import asr_pb2, common_pb2

router = APIRouter(tags=["openai"], route_class=OpenAIRoute, responses=OPENAI_ERRORS)

ResponseFormat = Literal["json", "text", "verbose_json", "srt", "vtt"]
_ANSWERS: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The transcript in `response_format`, or `transcript.text.*` events (`stream=true`).",
        "content": {
            "application/json": {},
            "text/plain": {"schema": {"type": "string"}},
            "text/event-stream": {"schema": {"type": "object"}},
        },
    }
}
PCM16 = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=RATE, channels=1)


@router.post("/v1/audio/transcriptions", response_model=None, responses=_ANSWERS)
async def transcriptions(
    pipeline: PipelineDep,
    backends: BackendsDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="The audio: wav, mp3, ogg/opus, flac, webm, m4a, ...")],
    model: Annotated[str, Form(max_length=128)],
    language: Annotated[str, Form(max_length=16)] = "",
    prompt: Annotated[str, Form(max_length=4096)] = "",
    temperature: Annotated[float, Form(ge=0, le=1)] = 0.0,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    granularities: Annotated[list[Literal["word", "segment"]] | None, Form(alias="timestamp_granularities[]")] = None,
    stream: Annotated[bool, Form()] = False,
) -> Response:
    """OpenAI's transcription of an audio file."""
    resolve(settings, model, "asr")
    # Decoding is CPU work of its own: off the event loop, so that nobody else's request waits for it.
    pcm = await asyncio.to_thread(to_pcm16, await file.read(), settings.asr.max_audio_seconds)
    if stream:
        events = _streamed(backends, pcm, language, settings.error_detail)
        return StreamingResponse(events, media_type="text/event-stream")
    result = (await pipeline.transcribe(pcm, PCM16, language)).result
    text = result.text.strip()
    if response_format == "text":
        return PlainTextResponse(text + "\n")
    if response_format in ("srt", "vtt"):
        cues = segments(result)
        return PlainTextResponse(srt(cues) if response_format == "srt" else vtt(cues))
    if response_format == "json":
        return Response(json.dumps({"text": text}), media_type="application/json")
    body: dict[str, object] = {
        "task": "transcribe",
        "language": result.language,
        "duration": len(pcm) / 2 / RATE,
        "text": text,
        "segments": [cue.openai(index) for index, cue in enumerate(segments(result))],
    }
    if granularities and "word" in granularities:
        body["words"] = [{"word": w.word.strip(), "start": w.start_seconds, "end": w.end_seconds} for w in result.words]
    return Response(json.dumps(body), media_type="application/json")


async def _streamed(backends: BackendsDep, pcm: bytes, language: str, detail: bool) -> AsyncIterator[str]:
    config = asr_pb2.RecognitionConfig(format=PCM16, language=language, interim_results=False)
    starts = iter(range(0, len(pcm), RATE * 2))  # a second of audio a message; shared, so a new stream goes on

    async def requests() -> AsyncIterator[asr_pb2.StreamingRecognizeRequest]:
        yield asr_pb2.StreamingRecognizeRequest(config=config)
        for start in starts:
            yield asr_pb2.StreamingRecognizeRequest(audio=pcm[start : start + RATE * 2])

    texts: list[str] = []
    try:
        async for reply in backends.recognize(requests):
            if reply.WhichOneof("event") == "final" and reply.final.result.text.strip():
                piece = reply.final.result.text.strip()
                delta = piece if not texts else " " + piece
                texts.append(piece)
                yield f"data: {json.dumps({'type': 'transcript.text.delta', 'delta': delta})}\n\n"
    except VoxError as exc:  # after the 200: the stream says what went wrong, as the chat stream does
        yield stream_error(exc, detail=detail)
        return
    yield f"data: {json.dumps({'type': 'transcript.text.done', 'text': ' '.join(texts)})}\n\n"
