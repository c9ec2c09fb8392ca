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
from collections.abc import MutableMapping
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from voxstack.codes import CloseCode, ErrorCode
from voxstack.config import CoreSettings
from voxstack.core.clients import Backends, StageError
from voxstack.core.drain import RECONNECT_REASON, Quiet
from voxstack.core.errors import caller_message
from voxstack.core.pipeline import Pipeline
from voxstack.core.realtime import protocol as p
from voxstack.core.realtime.formats import RATES, to_pcm16
from voxstack.core.realtime.input_audio import InputAudio
from voxstack.core.realtime.items import Items, shaped
from voxstack.core.realtime.response import Response, Spoken, finish
from voxstack.core.realtime.semantic_vad import HeldUtterance
from voxstack.core.realtime.settings import RealtimeSettings
from voxstack.core.ws_writer import WsWriter
from voxstack.errors import VoxError

logger = logging.getLogger(__name__)


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
        self.gone = asyncio.Event()
        self.writer = WsWriter(core_settings.ws_send_timeout, pipeline.metrics.slow_clients, self.gone)
        # Nobody speaks and no response runs: a stopping core hands the session over then.
        self.quiet = Quiet(lambda: not (self.input.speaking or self.responding))
        self.response: Response | None = None
        self._response_task: asyncio.Task[None] | None = None
        self.spoken: dict[str, Spoken] = {}  # assistant items' audio, for truncation (the last few)
        self.input = InputAudio(
            pipeline=pipeline,
            backends=backends,
            core_settings=core_settings,
            items=items,
            settings=lambda: self.settings,
            send=self.send,
            told=self.told,
            close=self.close,
            changed=self.quiet.changed,
            heard=self.heard,
            interrupted=self.interrupted,
        )

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
        """Send a server event; a client that has stopped reading is dropped (core/ws_writer.py)."""
        text = json.dumps({"event_id": f"event_{secrets.token_hex(8)}", **event})
        await self.writer.write(lambda: self.ws.send_text(text))

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
                before, self.settings = self.settings, self.settings.updated(p.SessionFields.model_validate(kept[0]))
                await self.input.settings_changed(before, self.settings)
        await self.send({"type": "session.created", "session": self.shape()})
        self.input.listen()
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
            await self.input.stop()
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
            refusal = self.input.guard.message()
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
            await self.input.append(event.audio)
        elif isinstance(event, p.SessionUpdate):
            await self.update(event.session)
        elif isinstance(event, p.Commit):
            await self.input.commit()
        elif isinstance(event, p.Clear):
            await self.input.clear()
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
        await self.input.settings_changed(before, after)
        # Kept beside the conversation (a session id cannot hold ':'), for a client that reconnects.
        await self.items.store.keep_items(f"{self.items.key}:settings", [self.shape()])
        await self.send({"type": "session.updated", "session": self.shape()})

    async def voice_exists(self, voice: str) -> bool:
        try:
            return voice in {v.name for v in (await self.pipeline.voices()).voices}
        except StageError:
            return True  # the tts cannot say now: the response reports it

    # ---- what the input audio starts and stops ----------------------------------------------------

    async def heard(self, speech_end: float, held: HeldUtterance | None = None) -> None:
        """An utterance's transcript is in: answer it, where the session's turn detection says so (a ``held``
        one with the llm call its words were judged in, when that is the response's)."""
        detection = self.settings.turn_detection
        if (detection is None or detection.create_response) and not self.responding:
            await self.respond(None, started=speech_end, held=held)

    async def interrupted(self) -> None:
        """Speech started: the response being spoken stops, where the session's turn detection says so."""
        detection = self.settings.turn_detection
        if self.responding and (detection is None or detection.interrupt_response):
            await self.cancel_response("turn_detected")

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
            await self.input.transcribe(item, pcm, RATES[self.settings.input_format])
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

    async def respond(
        self, fields: p.ResponseFields | None, started: float | None = None, held: HeldUtterance | None = None
    ) -> None:
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
        if held is not None:
            response.llm_call = held.take(response.request())
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
