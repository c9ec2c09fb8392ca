"""One Realtime response: the llm's reply (and the tts's audio of it) as the Realtime API's events.

A reply in words is one assistant message item whose audio and transcript
stream as deltas; a reply that calls functions is one function_call item a
call, and the client's ``function_call_output`` items with a new
``response.create`` go on from there. A response that is cancelled (the
client's ``response.cancel``, or speech that interrupts it) keeps, in the
conversation, the sentences whose audio was sent.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from voxstack.core.errors import caller_message
from voxstack.core.pipeline import Pipeline, ReplyDone, SentenceAudio, TextDelta
from voxstack.core.realtime.formats import bytes_per_second, from_pcm16
from voxstack.core.realtime.items import Items, Shaped, new_id
from voxstack.core.realtime.semantic_vad import Call
from voxstack.core.realtime.settings import RealtimeSettings
from voxstack.errors import VoxError
from voxstack.v1 import llm_pb2

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

#: Audio of one ``response.output_audio.delta``, in seconds: the client can start playing before the rest.
DELTA_SECONDS = 0.5


@dataclass
class Spoken:
    """What an assistant item's audio said: each sentence with where its audio ends, in ms."""

    sentences: list[tuple[float, str]] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return self.sentences[-1][0] if self.sentences else 0.0

    def heard(self, audio_end_ms: float) -> str:
        """The words of the sentences whose audio ended by ``audio_end_ms``."""
        return " ".join(text for end, text in self.sentences if end <= audio_end_ms + 1)


class Response:
    def __init__(
        self,
        send: Send,
        pipeline: Pipeline,
        settings: RealtimeSettings,
        items: Items | None,
        extra: Sequence[Shaped] = (),
        *,
        conversation: Items,
        started: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.id = new_id("resp")
        self.send = send
        self.pipeline = pipeline
        self.settings = settings
        self.items = items  # the conversation it joins; None: out of band ("conversation": "none")
        self.extra = extra
        self.conversation = conversation  # what it reads (the conversation, unless out of band)
        self.started = started if started is not None else time.perf_counter()
        self.metadata = metadata
        self.output: list[Shaped] = []
        self.message: Shaped | None = None
        self.text = ""
        self.spoken = Spoken()
        self.status = "in_progress"
        self.first_audio: float | None = None  # seconds from ``started`` to the first audio delta
        self.llm_call: Call | None = None  # its llm call, started already (semantic_vad judged the words in it)
        self.usage = (0, 0)

    def shape(self, status_details: dict[str, Any] | None = None) -> dict[str, Any]:
        input_tokens, output_tokens = self.usage
        return {
            "object": "realtime.response",
            "id": self.id,
            "status": self.status,
            "status_details": status_details,
            "output": self.output,
            "conversation_id": "auto" if self.items is not None else None,
            "output_modalities": [self.settings.modality],
            "max_output_tokens": self.settings.max_output_tokens,
            "metadata": self.metadata,
            "audio": {"output": {"format": {"type": self.settings.output_format}, "voice": self.settings.voice}},
            "usage": {
                "total_tokens": input_tokens + output_tokens,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "input_token_details": {"text_tokens": input_tokens, "audio_tokens": 0, "cached_tokens": 0},
                "output_token_details": {"text_tokens": output_tokens, "audio_tokens": 0},
            },
        }

    def request(self) -> llm_pb2.GenerateRequest:
        settings = self.settings
        return settings.request(self.conversation.chat(settings.instructions, self.extra, own=self.items is not None))

    async def join(self, item: Shaped) -> None:
        """A new output item: announced, and part of the conversation."""
        index = len(self.output)
        self.output.append(item)
        await self.send(
            {"type": "response.output_item.added", "response_id": self.id, "output_index": index, "item": item}
        )
        if self.items is not None:
            previous = await self.items.add(item)
            await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})

    async def done_item(self, item: Shaped) -> None:
        index = self.output.index(item)
        await self.send(
            {"type": "response.output_item.done", "response_id": self.id, "output_index": index, "item": item}
        )
        if self.items is not None:
            await self.items.replace(item)
            await self.send({"type": "conversation.item.done", "item": item})

    def part(self, kind: str = "output_") -> dict[str, Any]:
        """The message's content so far: ``output_audio``/``output_text`` in the item, ``audio``/``text`` in
        the content part events (as the API names them)."""
        if self.settings.modality == "audio":
            return {"type": f"{kind}audio", "transcript": self.text}
        return {"type": f"{kind}text", "text": self.text}

    def at(self) -> dict[str, Any]:
        """Where this response's message content is."""
        assert self.message is not None
        return {"response_id": self.id, "item_id": self.message["id"], "output_index": 0, "content_index": 0}

    async def open_message(self) -> None:
        if self.message is not None:
            return
        self.message = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        await self.join(self.message)
        await self.send({"type": "response.content_part.added", **self.at(), "part": self.part("")})

    async def run(self) -> None:
        """The whole response; cancelled, it ends as ``cancel`` says (the caller sends that)."""
        await self.send({"type": "response.created", "response": self.shape()})
        try:
            async for event in self.pipeline.reply(
                None,
                "",
                started=self.started,
                voice=self.settings.tts_voice,
                request=self.request(),
                audio=self.settings.modality == "audio",
                call=self.llm_call,
            ):
                if isinstance(event, TextDelta):
                    await self.open_message()
                    self.text += event.text
                    kind = "output_audio_transcript" if self.settings.modality == "audio" else "output_text"
                    await self.send({"type": f"response.{kind}.delta", **self.at(), "delta": event.text})
                elif isinstance(event, SentenceAudio):
                    await self.audio(event)
                elif isinstance(event, ReplyDone):
                    self.usage = (event.prompt_tokens, event.completion_tokens)
                    for call in event.tool_calls:
                        await self.call(call)
                    await self.close_message("completed")
        except VoxError as exc:
            message = caller_message(exc, detail=self.pipeline.settings.error_detail)
            self.status = "failed"
            await self.close_message("incomplete")
            error = {"type": "server_error", "code": exc.reason.lower(), "message": message}
            await self.send({"type": "response.done", "response": self.shape({"type": "failed", "error": error})})
            return
        self.status = "completed"
        await self.send({"type": "response.done", "response": self.shape()})

    async def audio(self, event: SentenceAudio) -> None:
        fmt = self.settings.output_format
        data = from_pcm16(event.pcm16, event.sample_rate, fmt)
        await self.open_message()
        step = int(bytes_per_second(fmt) * DELTA_SECONDS) // 2 * 2
        for at in range(0, len(data), step):
            if self.first_audio is None:
                self.first_audio = time.perf_counter() - self.started
            delta = base64.b64encode(data[at : at + step]).decode()
            await self.send({"type": "response.output_audio.delta", **self.at(), "delta": delta})
        seconds = len(data) / bytes_per_second(fmt)
        self.spoken.sentences.append((self.spoken.ms + seconds * 1000, event.text))

    async def call(self, call: llm_pb2.ToolCall) -> None:
        item = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "completed",
            "call_id": call.id,
            "name": call.name,
            "arguments": call.arguments,
        }
        await self.join(item)
        at = {
            "response_id": self.id,
            "item_id": item["id"],
            "output_index": self.output.index(item),
            "call_id": call.id,
        }
        await self.send({"type": "response.function_call_arguments.delta", **at, "delta": call.arguments})
        await self.send(
            {"type": "response.function_call_arguments.done", **at, "name": call.name, "arguments": call.arguments}
        )
        await self.done_item(item)

    async def close_message(self, status: str) -> None:
        """End the message item (if any) with what it said; cut to what was sent, when not completed."""
        message = self.message
        if message is None:
            return
        if status != "completed" and self.settings.modality == "audio":
            self.text = self.spoken.heard(self.spoken.ms)
        if self.settings.modality == "audio":
            await self.send({"type": "response.output_audio.done", **self.at()})
            await self.send({"type": "response.output_audio_transcript.done", **self.at(), "transcript": self.text})
        else:
            await self.send({"type": "response.output_text.done", **self.at(), "text": self.text})
        await self.send({"type": "response.content_part.done", **self.at(), "part": self.part("")})
        message["status"] = status
        message["content"] = [self.part()]
        await self.done_item(message)

    async def cancelled(self, reason: str) -> None:
        """After the task running ``run`` was cancelled: the item keeps what was sent; ``response.done``."""
        self.status = "cancelled"
        await self.close_message("incomplete")
        await self.send({"type": "response.done", "response": self.shape({"type": "cancelled", "reason": reason})})


async def finish(task: asyncio.Task[None]) -> None:
    """Wait for a cancelled response's task to unwind."""
    try:
        await task
    except (asyncio.CancelledError, Exception):  # its own failure was reported by run
        logger.debug("response task ended", exc_info=True)
