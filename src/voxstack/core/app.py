"""The core's HTTP API (FastAPI): transcribe, chat (SSE), speak, converse, healthz."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from voxstack.audio import wav_bytes
from voxstack.config import Settings
from voxstack.core.clients import Backends, StageError
from voxstack.core.pipeline import Pipeline, ReplyDone, SentenceAudio, TextDelta
from voxstack.core.sessions import SessionStore, check_session_id
from voxstack.errors import InvalidInput, TooLarge, VoxError
from voxstack.logs import request_id_var
from voxstack.rpc_status import REQUEST_ID_KEY
from voxstack.runtime import report_loaded_modules
from voxstack.v1 import common_pb2

logger = logging.getLogger(__name__)

WAV_TYPES = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})


class UnsupportedMedia(VoxError):
    http_status = 415
    default_reason = "UNSUPPORTED_MEDIA_TYPE"


class ChatRequest(BaseModel):
    message: str = Field(..., description="What the user says.")
    session_id: str | None = Field(None, description="Keeps the conversation's history between calls.")
    system: str | None = Field(None, description="A system prompt for this turn.")


class SpeakRequest(BaseModel):
    text: str
    voice: str = ""
    sample_rate: int = Field(0, ge=0, description="0 = the voice's own rate.")


def audio_format(content_type: str | None) -> common_pb2.AudioFormat:
    """The declared format of an uploaded body: WAV, or raw PCM16 as ``audio/L16; rate=16000; channels=1``."""
    if not content_type:
        raise UnsupportedMedia("no Content-Type: send audio/wav or audio/L16; rate=N; channels=N")
    media, *params = [p.strip() for p in content_type.split(";")]
    media = media.lower()
    if media in WAV_TYPES:
        return common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_WAV)
    if media == "audio/l16":
        values = dict(p.split("=", 1) for p in params if "=" in p)
        try:
            rate = int(values.get("rate", "0"))
            channels = int(values.get("channels", "1"))
        except ValueError:
            raise InvalidInput(f"bad audio/L16 parameters in {content_type!r}", reason="BAD_CONTENT_TYPE") from None
        if rate <= 0:
            raise InvalidInput("audio/L16 needs a rate parameter, e.g. audio/L16; rate=16000", reason="BAD_SAMPLE_RATE")
        return common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=rate, channels=channels)
    raise UnsupportedMedia(f"Content-Type {media} is not audio this API takes: send audio/wav or audio/L16; rate=N")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the upload is {int(declared)} bytes; the limit is {limit}", reason="UPLOAD_TOO_LARGE")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the upload is over the limit of {limit} bytes", reason="UPLOAD_TOO_LARGE")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise InvalidInput("the request body is empty: send the audio", reason="EMPTY_BODY")
    return body


def error_body(exc: VoxError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.reason, "message": exc.message, "request_id": request_id_var.get()}
    if isinstance(exc, StageError):
        error["stage"] = exc.stage
    return {"error": error}


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backends = Backends(settings)
        core = settings.core
        sessions = SessionStore(
            core.session_max_turns, core.session_max_chars, core.session_idle_seconds, core.max_sessions
        )
        app.state.backends = backends
        app.state.pipeline = Pipeline(settings, backends, sessions)
        report_loaded_modules()
        logger.info(
            "core %s mode; asr %s, llm %s, tts %s",
            settings.mode.value.upper(),
            *(backends.addresses[s] for s in ("asr", "llm", "tts")),
        )
        yield
        await backends.close()

    app = FastAPI(
        title=f"voxstack core ({settings.mode.value})",
        description="Voice assistant API: speech to text, chat, text to speech, and whole spoken turns.",
        version="1",
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def request_context(request: Request, call_next):  # type: ignore[no-untyped-def]
        rid = request.headers.get(REQUEST_ID_KEY) or uuid.uuid4().hex
        token = request_id_var.set(rid[:128])
        started = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers[REQUEST_ID_KEY] = rid[:128]
        response.headers["X-Voxstack-Mode"] = settings.mode.value
        level = logging.DEBUG if request.url.path == "/healthz" else logging.INFO
        logger.log(
            level,
            "%s %s %d %.1f ms",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            extra={"request_id": rid[:128], "status": response.status_code},
        )
        return response

    @app.exception_handler(VoxError)
    async def vox_error(request: Request, exc: VoxError) -> JSONResponse:
        if exc.http_status >= 500:
            logger.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(error_body(exc), status_code=exc.http_status)

    def pipeline(request: Request) -> Pipeline:
        return request.app.state.pipeline

    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        """This instance is up (whatever the state of the services behind it)."""
        return {"status": "alive", "mode": settings.mode.value}

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        """200 when every service is SERVING; otherwise 503 naming the ones that are not."""
        services = await request.app.state.backends.health()
        failing = sorted(s for s, v in services.items() if v["status"] != "SERVING")
        body = {"mode": settings.mode.value, "status": "ok" if not failing else "degraded", "services": services}
        if failing:
            body["failing"] = failing
        return JSONResponse(body, status_code=503 if failing else 200)

    @app.post("/v1/transcribe")
    async def transcribe(
        request: Request,
        content_type: Annotated[str | None, Header()] = None,
        language: Annotated[str, Query(description="ISO 639-1, 'auto', or empty for the default.")] = "",
    ) -> dict[str, Any]:
        """Audio (audio/wav or audio/L16; rate=N) in, text out."""
        fmt = audio_format(content_type)
        audio = await read_body(request, settings.core.max_upload_bytes)
        reply = await pipeline(request).transcribe(audio, fmt, language)
        result = reply.result
        return {
            "text": result.text,
            "language": result.language,
            "confidence": result.confidence,
            "words": [{"word": w.word, "start": w.start_seconds, "end": w.end_seconds} for w in result.words],
            "timings": {"decode": reply.timings.processing_seconds, "audio": reply.timings.audio_seconds},
        }

    @app.post("/v1/chat")
    async def chat(request: Request, body: ChatRequest) -> StreamingResponse:
        """Text in; the reply streamed as server-sent events: `delta` events, then one `done`."""
        if body.session_id is not None:
            check_session_id(body.session_id)
        if not body.message.strip():
            raise InvalidInput("message is empty", reason="EMPTY_TEXT")
        replies = pipeline(request).generate(body.session_id, body.message, body.system)
        # Fail before the 200 goes out when the llm cannot be reached at all.
        first = await anext(replies)

        async def events() -> AsyncIterator[str]:
            reply = first
            while True:
                if reply.WhichOneof("event") == "delta":
                    yield f"event: delta\ndata: {json.dumps({'text': reply.delta})}\n\n"
                else:
                    done = reply.done
                    data = {
                        "text": done.text,
                        "prompt_tokens": done.usage.prompt_tokens,
                        "completion_tokens": done.usage.completion_tokens,
                        "time_to_first_token": done.time_to_first_token_seconds,
                    }
                    yield f"event: done\ndata: {json.dumps(data)}\n\n"
                try:
                    reply = await anext(replies)
                except StopAsyncIteration:
                    return
                except VoxError as exc:
                    yield f"event: error\ndata: {json.dumps(error_body(exc))}\n\n"
                    return

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/v1/voices")
    async def voices(request: Request) -> dict[str, Any]:
        """The voices tts offers (names for `voice` in /v1/speak and the WebSocket config)."""
        reply = await pipeline(request).voices()
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

    @app.post("/v1/speak", response_class=Response, responses={200: {"content": {"audio/wav": {}}}})
    async def speak(request: Request, body: SpeakRequest) -> Response:
        """Text in, WAV out."""
        reply = await pipeline(request).speak(body.text, body.voice, body.sample_rate)
        return Response(reply.audio, media_type="audio/wav")

    @app.post("/v1/converse", responses={200: {"content": {"application/json": {}, "audio/wav": {}}}})
    async def converse(
        request: Request,
        content_type: Annotated[str | None, Header()] = None,
        accept: Annotated[str | None, Header()] = None,
        session_id: Annotated[str | None, Query(description="Keeps history between turns.")] = None,
        language: Annotated[str, Query()] = "",
    ) -> Response:
        """One spoken turn: speech in; transcript, reply text, reply audio and per-stage timings out.

        With `Accept: audio/wav` the reply audio itself comes back, the texts in headers.
        """
        if session_id is not None:
            check_session_id(session_id)
        fmt = audio_format(content_type)
        audio = await read_body(request, settings.core.max_upload_bytes)
        started = time.perf_counter()
        heard = await pipeline(request).transcribe(audio, fmt, language)
        transcript = heard.result.text
        if not transcript.strip():
            raise InvalidInput("no speech was recognised in the audio", reason="NO_SPEECH")
        pcm, rate, done = [], 0, ReplyDone("", "")
        async for event in pipeline(request).reply(session_id, transcript, started=started):
            if isinstance(event, SentenceAudio):
                pcm.append(event.pcm16)
                rate = event.sample_rate
            elif isinstance(event, ReplyDone):
                done = event
            elif isinstance(event, TextDelta):
                continue
        done.timings.asr_decode = heard.timings.processing_seconds
        wav = wav_bytes(b"".join(pcm), rate or 22050)
        if accept and "audio/wav" in accept.lower():
            headers = {"X-Voxstack-Transcript": quote(transcript), "X-Voxstack-Reply": quote(done.text)}
            return Response(wav, media_type="audio/wav", headers=headers)
        return JSONResponse(
            {
                "session_id": session_id,
                "transcript": transcript,
                "reply": done.text,
                "audio": {"format": "wav", "sample_rate": rate, "base64": base64.b64encode(wav).decode()},
                "timings": done.timings.as_dict(),
            }
        )

    from voxstack.core.websocket import add_stream_route

    add_stream_route(app, settings)
    return app


def app_from_env() -> FastAPI:
    """The core app with settings from the environment: for ``uvicorn --factory voxstack.core.app:app_from_env``."""
    from voxstack.config import load_settings
    from voxstack.logs import configure_logging

    settings = load_settings()
    configure_logging(settings, "core")
    return create_app(settings)
