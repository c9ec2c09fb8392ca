"""Whole spoken turns: ``POST /v1/converse`` (one turn) and ``WS /v1/stream`` (a conversation)."""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response

from voxstack.audio import wav_bytes
from voxstack.codes import CloseCode, ErrorCode
from voxstack.config import Settings
from voxstack.core import events
from voxstack.core.deps import BackendsDep, PipelineDep, SettingsDep, session_key
from voxstack.core.errors import BACKEND_ERRORS, EDGE_ERRORS, documented_errors
from voxstack.core.fairness import owner_var
from voxstack.core.pipeline import Pipeline, ReplyDone, SentenceAudio
from voxstack.core.sessions import check_session_id
from voxstack.core.uploads import audio_format, read_body
from voxstack.core.websocket import StreamConversation
from voxstack.errors import InvalidInput
from voxstack.logs import request_id_var
from voxstack.rpc_status import REQUEST_ID_KEY, clean_request_id

logger = logging.getLogger(__name__)

router = APIRouter(tags=["conversation"], responses=EDGE_ERRORS | BACKEND_ERRORS | documented_errors(415))


@router.post("/v1/converse", responses={200: {"content": {"application/json": {}, "audio/wav": {}}}})
async def converse(
    request: Request,
    pipeline: PipelineDep,
    content_type: Annotated[str | None, Header()] = None,
    accept: Annotated[str | None, Header()] = None,
    session_id: Annotated[str | None, Query(max_length=64, description="Keeps history between turns.")] = None,
    language: Annotated[str, Query(max_length=16, description="ISO 639-1, 'auto', or empty for the default.")] = "",
) -> Response:
    """One spoken turn: speech in; transcript, reply text, reply audio and per-stage timings out.

    With `Accept: audio/wav` the reply audio itself comes back, the texts in headers.
    """
    if session_id is not None:
        check_session_id(session_id)
    fmt = audio_format(content_type)
    # A place at the llm from arrival: refused now (429) rather than after the upload and the asr.
    with pipeline.llm_reserved():
        audio = await read_body(request)
        started = time.perf_counter()
        heard = await pipeline.transcribe(audio, fmt, language)
        transcript = heard.result.text
        if not transcript.strip():
            raise InvalidInput("no speech was recognised in the audio", reason=ErrorCode.NO_SPEECH)
        pcm, rate, done = [], 0, ReplyDone("", "")
        async for event in pipeline.reply(session_key(request, session_id), transcript, started=started):
            if isinstance(event, SentenceAudio):
                pcm.append(event.pcm16)
                rate = event.sample_rate
            elif isinstance(event, ReplyDone):
                done = event
    done.timings.asr_decode = heard.timings.processing_seconds
    pipeline.metrics.turn_done("converse", done.timings.as_dict())
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


@router.websocket("/v1/stream")
async def stream(ws: WebSocket, pipeline: PipelineDep, backends: BackendsDep, settings: SettingsDep) -> None:
    """A spoken conversation; the messages are those of ``voxstack.core.events`` (docs/API.md)."""
    await ws.accept()
    async with admitted(ws, pipeline, settings, refuse) as admission:
        if admission:
            await StreamConversation(ws, pipeline, backends, settings.core, ws.app.state.drain.started,
                               ws.app.state.recorder).run()  # fmt: skip


Refuse = Callable[[WebSocket, str, str], Awaitable[None]]


@contextlib.asynccontextmanager
async def admitted(ws: WebSocket, pipeline: Pipeline, settings: Settings, refused: Refuse) -> AsyncIterator[bool]:
    """A conversation's place in the core: False (after ``refused`` told the client) when the core or the
    caller's key is at its limit. Inside, a failure the conversation did not handle is an error event and
    close 1011; the conversation is counted while it runs."""
    drain = ws.app.state.drain
    limit = settings.core.max_conversations
    if limit and drain.conversations >= limit:
        # Before any stage spends work on it: a conversation answered slowly helps nobody.
        pipeline.metrics.refused.inc()
        message = f"the core is at its limit of {limit} conversations ({drain.conversations} open); try again later"
        await refused(ws, ErrorCode.OVERLOADED, message)
        yield False
        return
    owner = owner_var.get()
    refusal = pipeline.shares.conversation_refusal(owner)
    if refusal is not None:
        pipeline.metrics.refused.inc()
        await refused(ws, ErrorCode.KEY_CONVERSATIONS, refusal)
        yield False
        return
    token = request_id_var.set(clean_request_id(ws.headers.get(REQUEST_ID_KEY)))
    pipeline.metrics.websockets.inc()
    try:
        with drain.conversation(), pipeline.shares.conversation(owner):
            yield True
    except WebSocketDisconnect:
        pass
    except Exception as exc:  # whatever went wrong, the client gets an error event and a close code
        logger.exception("the conversation failed")
        with contextlib.suppress(Exception):
            message = f"{type(exc).__name__}: {exc}"[:300] if settings.error_detail else "internal error"
            await ws.send_json(events.Error(code=ErrorCode.INTERNAL, message=message).payload())
            await ws.close(CloseCode.INTERNAL_ERROR)
    finally:
        pipeline.metrics.websockets.dec()
        request_id_var.reset(token)


OVERLOADED_RETRY_SECONDS = 5


async def refuse(ws: WebSocket, code: str, message: str) -> None:
    """The error event ``code`` and close 1013 (try again later) for a conversation over a limit."""
    with contextlib.suppress(Exception):
        await ws.send_json(events.Error(code=code, message=message, retry_after=OVERLOADED_RETRY_SECONDS).payload())
        await ws.close(CloseCode.TRY_AGAIN_LATER, f"{code.lower()}: retry in {OVERLOADED_RETRY_SECONDS} s")
