"""``WS /v1/realtime``: one Realtime API session over one WebSocket.

The client's events (``protocol``) change the session's settings, feed its
input audio buffer, edit its conversation and start or cancel responses; the
server answers with the Realtime API's events. A malformed event is an
``error`` event and the session goes on; a client that floods the socket, stops
reading, or goes quiet for ``ws_idle_seconds`` is closed with the code
docs/API.md gives.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
import time
from collections.abc import MutableMapping
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected

from voxstack.codes import CloseCode, ErrorCode
from voxstack.config import CoreSettings
from voxstack.core.clients import Backends, StageError
from voxstack.core.drain import RECONNECT_REASON, Quiet
from voxstack.core.errors import caller_message
from voxstack.core.inputguard import InputGuard
from voxstack.core.pipeline import Pipeline
from voxstack.core.realtime import protocol as p
from voxstack.core.realtime.formats import RATES, to_pcm16
from voxstack.core.realtime.items import Items, Shaped, new_id, shaped
from voxstack.core.realtime.listener import Listener
from voxstack.core.realtime.response import Response, Spoken, finish
from voxstack.core.realtime.settings import RealtimeSettings
from voxstack.errors import VoxError
from voxstack.v1 import asr_pb2, common_pb2

logger = logging.getLogger(__name__)

#: Shortest audio a manual commit takes, as OpenAI's (``input_audio_buffer_commit_empty`` below it).
MIN_COMMIT_MS = 100


class RealtimeConnection:
    def __init__(
        self,
        ws: WebSocket,
        pipeline: Pipeline,
        backends: Backends,
        core_settings: CoreSettings,
        *,
        session_id: str,
        items: Items,
        model: str,
        draining: asyncio.Event,
    ) -> None:
        self.ws = ws
        self.pipeline = pipeline
        self.backends = backends
        self.core_settings = core_settings
        self.session_id = session_id
        self.items = items
        self.model = model
        self.draining = draining
        self.settings = RealtimeSettings(instructions=pipeline.settings.llm.system_prompt or "")
        self.send_lock = asyncio.Lock()
        self.gone = asyncio.Event()
        self.buffer = bytearray()  # appended PCM16 not committed yet (turn detection off)
        # Nobody speaks and no response runs: a stopping core hands the session over then.
        self.quiet = Quiet(lambda: not ((self.listener is not None and self.listener.speaking) or self.responding))
        self._listener: Listener | None = None
        self.response: Response | None = None
        self._response_task: asyncio.Task[None] | None = None
        self.spoken: dict[str, Spoken] = {}  # assistant items' audio, for truncation (the last few)
        self.user_item = ""  # the item id of the utterance being heard
        self.utterance_start = self.utterance_seconds = 0.0  # its start in the asr stream, and its length
        self.speech_end = time.perf_counter()
        self.guard = InputGuard(core_settings, 2, RATES[self.settings.input_format])

    @property
    def listener(self) -> Listener | None:
        """The asr stream of server turn detection (None: off, or not started yet)."""
        return self._listener

    @listener.setter
    def listener(self, value: Listener | None) -> None:
        self._listener = value
        self.quiet.changed()

    @property
    def response_task(self) -> asyncio.Task[None] | None:
        return self._response_task

    @response_task.setter
    def response_task(self, task: asyncio.Task[None] | None) -> None:
        self._response_task = task
        if task is not None:
            task.add_done_callback(self.quiet.changed)
        self.quiet.changed()

    # ---- sending -----------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        """Send a server event; a client that has stopped reading for ``ws_send_timeout`` is dropped."""
        event = {"event_id": f"event_{secrets.token_hex(8)}", **event}
        async with self.send_lock:
            try:
                await asyncio.wait_for(self.ws.send_text(json.dumps(event)), self.core_settings.ws_send_timeout)
            except asyncio.TimeoutError:
                logger.warning("the realtime client read nothing for %g s: closing", self.core_settings.ws_send_timeout)
                self.pipeline.metrics.slow_clients.inc()
                self.gone.set()
                raise WebSocketDisconnect(CloseCode.POLICY_VIOLATION, ErrorCode.SLOW_CLIENT) from None
            except (WebSocketDisconnected, RuntimeError):
                self.gone.set()
                raise WebSocketDisconnect(CloseCode.NORMAL_CLOSURE, "CLOSED") from None

    async def error(self, exc: p.ProtocolError, event_id: str | None) -> None:
        error = {"type": exc.kind, "code": exc.code, "message": exc.message, "param": exc.param, "event_id": event_id}
        await self.send({"type": "error", "error": error})

    async def close(self, code: str, message: str, close_code: int) -> None:
        """An error that ends the session: the event, then the close."""
        with contextlib.suppress(Exception):
            await self.error(p.ProtocolError(message, code=code.lower()), None)
        self.gone.set()
        with contextlib.suppress(Exception):
            await self.ws.close(close_code, code.lower())

    def told(self, exc: VoxError) -> str:
        return caller_message(exc, detail=self.pipeline.settings.error_detail)

    # ---- the session -------------------------------------------------------------------------

    async def run(self) -> None:
        kept = await self.items.store.items(f"{self.items.key}:settings")
        if kept:  # a resumed session: its settings as the client last made them
            with contextlib.suppress(p.ProtocolError, ValueError):
                self.settings = self.settings.updated(p.SessionFields.model_validate(kept[0]))
                self.guard = InputGuard(self.core_settings, 2, RATES[self.settings.input_format])
        await self.send({"type": "session.created", "session": self.shape()})
        self.listen()
        reader = asyncio.create_task(self.read())
        gone = asyncio.create_task(self.gone.wait())
        handover = asyncio.create_task(self.hand_over())
        try:
            await asyncio.wait([reader, gone, handover], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, gone, handover):
                task.cancel()
            await asyncio.gather(reader, gone, handover, return_exceptions=True)
            if self.response_task is not None:
                self.response_task.cancel()
                await finish(self.response_task)
            if self.listener is not None:
                await self.listener.stop()
            if not self.gone.is_set():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.ws.close(CloseCode.NORMAL_CLOSURE), 1.0)

    def shape(self) -> dict[str, Any]:
        return self.settings.as_object(self.session_id, self.model)

    async def hand_over(self) -> None:
        """Once the core is stopping: when nobody speaks and no response runs, close with 1012; the client
        reconnects with ``?session_id=`` and finds its conversation."""
        await self.draining.wait()
        await self.quiet.wait()
        self.gone.set()
        with contextlib.suppress(Exception):
            await self.ws.close(CloseCode.SERVICE_RESTART, RECONNECT_REASON)

    @property
    def responding(self) -> bool:
        return self.response_task is not None and not self.response_task.done()

    async def read(self) -> None:
        while True:
            try:
                message: MutableMapping[str, Any] = await asyncio.wait_for(
                    self.ws.receive(), self.core_settings.ws_idle_seconds
                )
            except asyncio.TimeoutError:
                seconds = self.core_settings.ws_idle_seconds
                await self.close(ErrorCode.IDLE_TIMEOUT, f"nothing was received for {seconds:g} s", 1000)
                return
            if message["type"] == "websocket.disconnect":
                self.gone.set()
                return
            refusal = self.guard.message()
            if refusal is not None:
                await self.close(refusal.code, refusal.message, refusal.close_code)
                return
            text = message.get("text")
            if text is None:
                await self.error(p.ProtocolError("binary frames are not part of the protocol: send JSON events",
                                                 code="invalid_event"), None)  # fmt: skip
                continue
            try:
                await self.handle(p.parse(text))
            except p.ProtocolError as exc:
                await self.error(exc, p.event_id_of(text))
            except VoxError as exc:
                await self.error(p.ProtocolError(self.told(exc), code=exc.reason.lower()), p.event_id_of(text))
            if self.gone.is_set():
                return

    async def handle(self, event: p.ClientEvent) -> None:
        if isinstance(event, p.Append):
            await self.append(event.audio)
        elif isinstance(event, p.SessionUpdate):
            await self.update(event.session)
        elif isinstance(event, p.Commit):
            await self.commit()
        elif isinstance(event, p.Clear):
            self.buffer.clear()
            if self.listener is not None and self.listener.speaking:  # the utterance being heard goes too
                await self.listener.stop()
                self.listener = None
                self.listen()
            await self.send({"type": "input_audio_buffer.cleared"})
        elif isinstance(event, p.ItemCreate):
            await self.create_item(event)
        elif isinstance(event, p.ItemRetrieve):
            await self.send({"type": "conversation.item.retrieved", "item": self.items.find(event.item_id)})
        elif isinstance(event, p.ItemDelete):
            await self.items.delete(event.item_id)
            await self.send({"type": "conversation.item.deleted", "item_id": event.item_id})
        elif isinstance(event, p.ItemTruncate):
            await self.truncate(event)
        elif isinstance(event, p.ResponseCreate):
            await self.respond(event.response)
        elif isinstance(event, p.ResponseCancel):
            if not self.responding or (event.response_id and self.response and event.response_id != self.response.id):
                raise p.ProtocolError("no response is in progress to cancel", code="response_cancel_not_active")
            await self.cancel_response("client_cancelled")
        elif isinstance(event, p.OutputClear):
            response = self.response
            if response is None or not self.responding:
                raise p.ProtocolError("no response is being spoken", code="output_audio_buffer_clear_inactive")
            await self.cancel_response("client_cancelled")
            await self.send({"type": "output_audio_buffer.cleared", "response_id": response.id})

    async def update(self, fields: p.SessionFields) -> None:
        before = self.settings
        after = before.updated(fields)
        if after.tts_voice and after.voice != before.voice and not await self.voice_exists(after.tts_voice):
            raise p.ProtocolError(
                f"unknown voice {after.voice!r}: see GET /v1/voices", param="session.audio.output.voice"
            )
        self.settings = after
        if after.input_format != before.input_format:
            self.buffer.clear()
            self.guard = InputGuard(self.core_settings, 2, RATES[after.input_format])
        if (after.recognition(), after.turn_detection is None) != (before.recognition(), before.turn_detection is None):
            if self.listener is not None:
                await self.listener.stop()
                self.listener = None
            self.listen()
        # Kept beside the conversation (a session id cannot hold ':'), for a client that reconnects.
        await self.items.store.keep_items(f"{self.items.key}:settings", [self.shape()])
        await self.send({"type": "session.updated", "session": self.shape()})

    async def voice_exists(self, voice: str) -> bool:
        try:
            return voice in {v.name for v in (await self.pipeline.voices()).voices}
        except StageError:
            return True  # the tts cannot say now: the response reports it

    # ---- input audio ---------------------------------------------------------------------------

    def listen(self) -> None:
        """Start server turn detection, where the session has it."""
        if self.settings.turn_detection is None or self.listener is not None:
            return
        self.listener = Listener(
            self.backends,
            self.settings.recognition(),
            self.on_asr,
            self.core_settings.ws_queue_chunks,
            changed=self.quiet.changed,
        )
        self.listener.start()

    async def append(self, audio: str) -> None:
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise p.ProtocolError("audio is not valid base64", param="audio") from None
        fmt = self.settings.input_format
        if fmt == "audio/pcm" and len(data) % 2:
            raise p.ProtocolError(f"{len(data)} bytes of audio/pcm is not whole 16-bit samples", param="audio")
        pcm = to_pcm16(data, fmt)
        if self.listener is None and self.settings.turn_detection is None:
            limit = int(self.pipeline.settings.asr.max_audio_seconds * RATES[fmt] * 2)
            if len(self.buffer) + len(pcm) > limit:
                raise p.ProtocolError(
                    f"the input audio buffer would hold more than {limit // (RATES[fmt] * 2)} s: commit or clear it",
                    code="input_audio_buffer_full",
                )
            self.buffer += pcm
            return
        refusal = self.guard.audio(len(pcm))
        if refusal is not None:
            await self.close(refusal.code, refusal.message, refusal.close_code)
            return
        if self.listener is not None and self.listener.failed:
            failure = self.listener.failure
            self.listener = None
            self.listen()
            if isinstance(failure, VoxError):
                raise failure
        self.listen()
        assert self.listener is not None
        await self.listener.put(pcm)

    async def commit(self) -> None:
        if self.settings.turn_detection is not None:
            raise p.ProtocolError(
                "turn detection is on: the server commits each utterance when it ends (turn it off to commit)",
                code="input_audio_buffer_commit_empty",
            )
        rate = RATES[self.settings.input_format]
        if len(self.buffer) < rate * 2 * MIN_COMMIT_MS // 1000:
            ms = len(self.buffer) * 1000 // (rate * 2)
            raise p.ProtocolError(
                f"buffer too small: expected at least {MIN_COMMIT_MS} ms of audio, but buffer only has {ms} ms",
                code="input_audio_buffer_commit_empty",
            )
        audio, self.buffer = bytes(self.buffer), bytearray()
        self.speech_end = time.perf_counter()
        item = self.user_audio_item(new_id("item"))
        previous = await self.items.add(item)
        await self.send({"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item["id"]})
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.transcribe(item, audio, rate)

    @staticmethod
    def user_audio_item(item_id: str) -> Shaped:
        return {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }

    async def transcribe(self, item: Shaped, pcm16: bytes, rate: int) -> None:
        fmt = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=rate, channels=1)
        language = self.settings.transcription.language if self.settings.transcription else None
        try:
            heard = await self.pipeline.transcribe(pcm16, fmt, language or "")
        except VoxError as exc:
            await self.transcribed(item, None, exc)
            return
        await self.transcribed(item, heard.result.text, None, len(pcm16) / 2 / rate)

    async def transcribed(self, item: Shaped, text: str | None, failure: VoxError | None, seconds: float = 0) -> None:
        """A user audio item's transcript (or why there is none): events, the item done."""
        at = {"item_id": item["id"], "content_index": 0}
        if failure is not None:
            error = {"type": "transcription_error", "code": failure.reason.lower(), "message": self.told(failure)}
            await self.send({"type": "conversation.item.input_audio_transcription.failed", **at, "error": error})
        else:
            item["content"][0]["transcript"] = text
            await self.items.replace(item)
            if self.settings.transcription is not None:
                await self.send({"type": "conversation.item.input_audio_transcription.delta", **at, "delta": text})
                await self.send(
                    {
                        "type": "conversation.item.input_audio_transcription.completed",
                        **at,
                        "transcript": text,
                        "usage": {"type": "duration", "seconds": round(seconds, 3)},
                    }
                )
        await self.send({"type": "conversation.item.done", "item": item})

    async def on_asr(self, reply: asr_pb2.StreamingRecognizeResponse) -> None:
        kind = reply.WhichOneof("event")
        detection = self.settings.turn_detection
        if kind == "speech_started":
            self.user_item = new_id("item")
            self.utterance_start = reply.speech_started.offset_seconds
            ms = int(reply.speech_started.offset_seconds * 1000)
            await self.send(
                {"type": "input_audio_buffer.speech_started", "audio_start_ms": ms, "item_id": self.user_item}
            )
            if self.responding and (detection is None or detection.interrupt_response):
                await self.cancel_response("turn_detected")
        elif kind == "speech_ended":
            self.speech_end = time.perf_counter()
            self.utterance_seconds = reply.speech_ended.offset_seconds - self.utterance_start
            ms = int(reply.speech_ended.offset_seconds * 1000)
            await self.send(
                {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms, "item_id": self.user_item}
            )
            item = self.user_audio_item(self.user_item)
            previous = await self.items.add(item)
            await self.send(
                {"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item["id"]}
            )
            await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        elif kind == "final":
            try:
                item = self.items.find(self.user_item)
            except p.ProtocolError:  # the client deleted it meanwhile: nothing to transcribe into or answer
                return
            text = reply.final.result.text
            await self.transcribed(item, text, None, self.utterance_seconds)
            if text.strip() and (detection is None or detection.create_response) and not self.responding:
                await self.respond(None, started=self.speech_end)

    # ---- the conversation ------------------------------------------------------------------------

    async def create_item(self, event: p.ItemCreate) -> None:
        item = shaped(event.item)
        audio = [part.audio for part in event.item.content or [] if part.type == "input_audio" and part.audio]
        previous = await self.items.add(item, event.previous_item_id)
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        if audio:
            try:
                pcm = to_pcm16(base64.b64decode("".join(audio), validate=True), self.settings.input_format)
            except (binascii.Error, ValueError):
                await self.items.delete(item["id"])
                raise p.ProtocolError("item.content audio is not valid base64", param="item.content") from None
            await self.transcribe(item, pcm, RATES[self.settings.input_format])
            return
        await self.send({"type": "conversation.item.done", "item": item})

    async def truncate(self, event: p.ItemTruncate) -> None:
        item = self.items.find(event.item_id)
        spoken = self.spoken.get(event.item_id)
        if item.get("role") != "assistant" or spoken is None:
            raise p.ProtocolError("only an assistant message with audio can be truncated", param="item_id")
        if event.audio_end_ms > spoken.ms + 1:
            raise p.ProtocolError(
                f"audio_end_ms {event.audio_end_ms} is past the item's audio ({spoken.ms:.0f} ms)",
                param="audio_end_ms",
            )
        if (
            self.response is not None
            and self.responding
            and self.response.message is not None
            and self.response.message["id"] == item["id"]
        ):
            await self.cancel_response("client_cancelled")
        item["content"] = [{"type": "output_audio", "transcript": spoken.heard(event.audio_end_ms)}]
        await self.items.replace(item)
        truncated = {"item_id": event.item_id, "content_index": event.content_index, "audio_end_ms": event.audio_end_ms}
        await self.send({"type": "conversation.item.truncated", **truncated})

    async def respond(self, fields: p.ResponseFields | None, started: float | None = None) -> None:
        if self.responding:
            raise p.ProtocolError(
                "a response is already in progress: cancel it or wait for response.done",
                code="conversation_already_has_active_response",
            )
        settings = self.settings.updated(fields, "response") if fields is not None else self.settings
        own = fields is None or fields.conversation != "none"
        extra = [shaped(i) for i in (fields.input or [])] if fields is not None else []
        response = Response(
            self.send,
            self.pipeline,
            settings,
            self.items if own else None,
            extra,
            conversation=self.items,
            started=started,
            metadata=fields.metadata if fields is not None else None,
        )
        self.response = response
        self.response_task = asyncio.create_task(self.run_response(response))

    async def run_response(self, response: Response) -> None:
        try:
            await response.run()
        except WebSocketDisconnect:
            return
        finally:
            if response.message is not None and response.spoken.sentences:
                self.spoken[response.message["id"]] = response.spoken
                while len(self.spoken) > 8:
                    self.spoken.pop(next(iter(self.spoken)))
        if response.first_audio is not None and response.status == "completed":
            self.pipeline.metrics.turn_done("realtime", {"first_audio": response.first_audio})
        await self.send({"type": "rate_limits.updated", "rate_limits": self.rate_limits()})

    def rate_limits(self) -> list[dict[str, Any]]:
        capacity = self.pipeline.llm_capacity
        remaining = max(0, capacity - self.pipeline.llm_calls)
        return [{"name": "requests", "limit": capacity, "remaining": remaining, "reset_seconds": 0}]

    async def cancel_response(self, reason: str) -> None:
        task, response = self.response_task, self.response
        if task is None or response is None or task.done():
            return
        task.cancel()
        await finish(task)
        if response.message is not None and response.spoken.sentences:
            self.spoken[response.message["id"]] = response.spoken
        with contextlib.suppress(WebSocketDisconnect):
            await response.cancelled(reason)
