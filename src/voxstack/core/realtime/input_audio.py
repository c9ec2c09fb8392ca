"""A Realtime session's input audio: what the client appends, kept as a buffer that it commits (turn
detection off) or streamed to the asr, whose utterances the server commits (server turn detection); the
user audio items they become, and their transcripts.

What a heard utterance starts (a response) and what speech interrupts (the response being spoken) is the
session's to say: ``heard`` and ``interrupted``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocketDisconnect

from voxstack.config import CoreSettings
from voxstack.core.clients import Backends
from voxstack.core.continuation import Continuation
from voxstack.core.inputguard import InputGuard
from voxstack.core.pipeline import Pipeline
from voxstack.core.realtime import protocol as p
from voxstack.core.realtime.formats import RATES, to_pcm16
from voxstack.core.realtime.items import Items, Shaped, new_id
from voxstack.core.realtime.listener import Listener
from voxstack.core.realtime.semantic_vad import HeldUtterance, PauseJudgement, ends_pauses, holds, until_whole
from voxstack.core.realtime.settings import RealtimeSettings
from voxstack.core.turn import same_words
from voxstack.errors import VoxError
from voxstack.v1 import asr_pb2, common_pb2

#: Shortest audio a manual commit takes, as OpenAI's (``input_audio_buffer_commit_empty`` below it).
MIN_COMMIT_MS = 100

Send = Callable[[dict[str, Any]], Awaitable[None]]


class InputAudio:
    def __init__(
        self,
        *,
        pipeline: Pipeline,
        backends: Backends,
        core_settings: CoreSettings,
        items: Items,
        settings: Callable[[], RealtimeSettings],
        send: Send,
        told: Callable[[VoxError], str],
        close: Callable[[str, str, int], Awaitable[None]],
        changed: Callable[[], None],
        heard: Callable[[float, HeldUtterance | None], Awaitable[None]],
        interrupted: Callable[[], Awaitable[None]],
    ) -> None:
        self.pipeline = pipeline
        self.backends = backends
        self.core_settings = core_settings
        self.items = items
        self.settings = settings  # the session's, as the client last set them
        self.send = send
        self.told = told
        self.close = close
        self.changed = changed  # told each time someone starts or stops speaking
        self.heard = heard  # an utterance's transcript is in (with the time its speech ended)
        self.interrupted = interrupted  # speech started
        self.buffer = bytearray()  # appended PCM16 not committed yet (turn detection off)
        self._listener: Listener | None = None
        self.user_item = ""  # the item id of the utterance being heard
        self.utterance_start = self.utterance_seconds = 0.0  # its start in the asr stream, and its length
        self.speech_end = time.perf_counter()
        self.guard = InputGuard(core_settings, 2, RATES[settings().input_format])
        self.held: HeldUtterance | None = None  # semantic_vad: an utterance not taken as a turn yet
        self.pause: PauseJudgement | None = None  # semantic_vad: the words of the pause going on, being judged
        # What a held utterance the speaker went on from said: the next final's text follows it, unless the asr
        # decoded both as one (it no longer held the first part's audio when the join came: a client sending
        # faster than real time).
        self.continuation: Continuation | None = None

    @property
    def listener(self) -> Listener | None:
        """The asr stream of server turn detection (None: off, or not started yet)."""
        return self._listener

    @listener.setter
    def listener(self, value: Listener | None) -> None:
        self._listener = value
        self.changed()

    @property
    def speaking(self) -> bool:
        """Someone speaks, or an utterance of theirs waits to be taken as a turn."""
        return (self._listener is not None and self._listener.speaking) or self.taking

    def listen(self) -> None:
        """Start server turn detection, where the session has it."""
        if self.settings().turn_detection is None or self.listener is not None:
            return
        self.listener = Listener(
            self.backends,
            self.settings().recognition(words_end_pauses=ends_pauses(self.pipeline.settings)),
            self.on_asr,
            self.core_settings.ws_queue_chunks,
            changed=self.changed,
        )
        self.listener.start()

    async def stop(self) -> None:
        """End the asr stream, if any: what it has not heard yet, or not taken as a turn yet, is dropped."""
        await self.drop_pause()
        await self.drop_held()
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None

    async def settings_changed(self, before: RealtimeSettings, after: RealtimeSettings) -> None:
        """Another input format drops the buffer; other recognition or turn detection, the asr stream."""
        if after.input_format != before.input_format:
            self.buffer.clear()
            self.guard = InputGuard(self.core_settings, 2, RATES[after.input_format])
        if (after.recognition(), after.turn_detection is None) != (before.recognition(), before.turn_detection is None):
            await self.stop()
            self.listen()

    async def clear(self) -> None:
        """``input_audio_buffer.clear``: the buffer, and the utterance being heard, go."""
        self.buffer.clear()
        if self.speaking:
            await self.stop()
            self.listen()
        await self.send({"type": "input_audio_buffer.cleared"})

    async def append(self, audio: str) -> None:
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise p.ProtocolError("audio is not valid base64", param="audio") from None
        settings = self.settings()
        fmt = settings.input_format
        if fmt == "audio/pcm" and len(data) % 2:
            raise p.ProtocolError(f"{len(data)} bytes of audio/pcm is not whole 16-bit samples", param="audio")
        pcm = to_pcm16(data, fmt)
        if self.listener is None and settings.turn_detection is None:
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
        settings = self.settings()
        if settings.turn_detection is not None:
            raise p.ProtocolError(
                "turn detection is on: the server commits each utterance when it ends (turn it off to commit)",
                code="input_audio_buffer_commit_empty",
            )
        rate = RATES[settings.input_format]
        if len(self.buffer) < rate * 2 * MIN_COMMIT_MS // 1000:
            ms = len(self.buffer) * 1000 // (rate * 2)
            raise p.ProtocolError(
                f"buffer too small: expected at least {MIN_COMMIT_MS} ms of audio, but buffer only has {ms} ms",
                code="input_audio_buffer_commit_empty",
            )
        audio, self.buffer = bytes(self.buffer), bytearray()
        self.speech_end = time.perf_counter()
        item = user_audio_item(new_id("item"))
        previous = await self.items.add(item)
        await self.send({"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item["id"]})
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.transcribe(item, audio, rate)

    async def transcribe(self, item: Shaped, pcm16: bytes, rate: int) -> None:
        fmt = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=rate, channels=1)
        transcription = self.settings().transcription
        language = transcription.language if transcription else None
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
            if self.settings().transcription is not None:
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
        if kind in ("speech_started", "speech_resumed"):
            await self.drop_pause()
        if kind == "speculative":
            await self.judge_pause(reply.utterance_index, reply.speculative.result)
        elif kind == "speech_started":
            if self.held is not None and self.held.text and self.listener is not None:  # they went on: one utterance
                self.continuation = Continuation(self.held.text, self.utterance_start)
                await self.drop_held()
                await self.listener.join()
                return
            if self.held is not None:  # the transcript of the last one is not in yet: it is a turn of its own
                held, self.held = self.held, None
                await self.report_end(held.end_ms)
            self.user_item = new_id("item")
            self.utterance_start = reply.speech_started.offset_seconds
            ms = int(reply.speech_started.offset_seconds * 1000)
            await self.send(
                {"type": "input_audio_buffer.speech_started", "audio_start_ms": ms, "item_id": self.user_item}
            )
            await self.interrupted()
        elif kind == "speech_ended":
            self.speech_end = time.perf_counter()
            self.utterance_seconds = reply.speech_ended.offset_seconds - self.utterance_start
            ms = int(reply.speech_ended.offset_seconds * 1000)
            rule = asr_pb2.EndRule.Name(reply.speech_ended.rule).removeprefix("END_RULE_").lower()
            detection = self.settings().turn_detection
            if detection is not None and detection.type == "semantic_vad" and holds(self.pipeline.settings, rule):
                self.held = HeldUtterance(ms, rule)
                return
            await self.report_end(ms)
        elif kind == "final":
            continuation, self.continuation = self.continuation, None
            text = continuation.join(reply.final.result) if continuation is not None else reply.final.result.text
            pause, self.pause = self.pause, None  # the words of its last pause, judged: reused if the same
            if pause is not None and not same_words(pause.held.text, text):
                await pause.close()
                pause = None
            if self.held is not None:
                held = self.held
                if text.strip():
                    held.text = text
                    held.task = asyncio.create_task(self.take(held, pause))
                    self.changed()
                    return
                self.held = None
                await self.report_end(held.end_ms)
            try:
                await self.heard_final(text, pause.held if pause is not None else None)
            finally:
                if pause is not None:
                    await pause.close()  # no response took its call

    async def report_end(self, ms: int) -> None:
        """The utterance ended at ``ms`` in the input audio: committed, as a user item."""
        await self.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms, "item_id": self.user_item})
        item = user_audio_item(self.user_item)
        previous = await self.items.add(item)
        await self.send({"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item["id"]})
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})

    async def heard_final(self, text: str, held: HeldUtterance | None = None) -> None:
        """The committed utterance's transcript: on its item, and answered (where the session says so; ``held``:
        with the llm call its words were judged in, if it was held)."""
        try:
            item = self.items.find(self.user_item)
        except p.ProtocolError:  # the client deleted it meanwhile: nothing to transcribe into or answer
            return
        await self.transcribed(item, text, None, self.utterance_seconds)
        if text.strip():
            await self.heard(self.speech_end, held)

    @property
    def taking(self) -> bool:
        """An utterance whose transcript is in waits to be taken as a turn."""
        return self.held is not None and self.held.task is not None

    async def take(self, held: HeldUtterance, pause: PauseJudgement | None = None) -> None:
        """``held`` is a turn once its words are judged whole (at the ``pause`` it ended at, if given), or after a
        longer silence (core/realtime/semantic_vad.py); then it is reported and answered as any other."""
        settings = self.settings()
        detection = settings.turn_detection
        eagerness = (detection.eagerness if detection is not None else None) or "auto"
        asked = user_audio_item(self.user_item)
        asked["content"][0]["transcript"] = held.text
        held.request = settings.request(self.items.chat(settings.instructions, [asked]))
        try:
            await until_whole(self.pipeline, held, self.speech_end, eagerness, pause)
        finally:
            if pause is not None:
                await pause.close()  # its call is held's now, if it had one
        self.held = None  # taken: speech from now on is another utterance
        self.changed()
        try:
            with contextlib.suppress(WebSocketDisconnect):  # the client went away meanwhile: nobody to tell
                await self.report_end(held.end_ms)
                await self.heard_final(held.text, held)
        finally:
            await held.close()  # no response took its call

    async def judge_pause(self, utterance: int, heard: asr_pb2.RecognitionResult) -> None:
        """semantic_vad, at a pause the asr's turn model did not end: judge the words so far, in the call a
        response to them would use; whole enough, the utterance ends at this pause (core/realtime/semantic_vad.py)."""
        await self.drop_pause()  # an earlier pause's words, if the asr said nothing of the speech between
        detection = self.settings().turn_detection
        listener = self.listener
        if detection is None or detection.type != "semantic_vad" or listener is None or self.held is not None:
            return
        text = self.continuation.join(heard) if self.continuation is not None else heard.text
        if not text.strip():
            return
        settings = self.settings()
        asked = user_audio_item(self.user_item)
        asked["content"][0]["transcript"] = text
        held = HeldUtterance(int(heard.end_seconds * 1000), "words", text)
        held.request = settings.request(self.items.chat(settings.instructions, [asked]))
        self.pause = PauseJudgement(held)
        self.pause.start(self.pipeline, lambda: listener.end_utterance(utterance, heard.end_seconds))

    async def drop_pause(self) -> None:
        """Forget the words of a pause being judged, if any: the speaker went on, or the utterance ended
        otherwise."""
        pause, self.pause = self.pause, None
        if pause is not None:
            await pause.close()

    async def drop_held(self) -> None:
        """Forget the utterance waiting to be taken, if any (the speaker went on, or its stream ends)."""
        held, self.held = self.held, None
        if held is not None and held.task is not None:
            held.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await held.task
            await held.close()
            self.changed()


def user_audio_item(item_id: str) -> Shaped:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }
