"""Server turn detection for a Realtime session: its appended audio streamed to the asr, whose events
(speech started, ended, the final transcript) the session turns into the Realtime API's.

One asr stream a listener; a session whose input format or turn detection
changes starts a new listener. The audio queue is bounded: while the asr is
behind, the session stops reading the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from voxstack.core.clients import Backends
from voxstack.v1 import asr_pb2

logger = logging.getLogger(__name__)

Request = asr_pb2.StreamingRecognizeRequest
OnEvent = Callable[[asr_pb2.StreamingRecognizeResponse], Awaitable[None]]


class Listener:
    def __init__(
        self,
        backends: Backends,
        config: asr_pb2.RecognitionConfig,
        on_event: OnEvent,
        queue_chunks: int,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.backends = backends
        self.config = config
        self.on_event = on_event
        self.changed = changed  # told each time `speaking` changes
        # Audio, or a request of another kind (JoinPrevious, EndUtterance); None ends the stream.
        self.audio: asyncio.Queue[bytes | Request | None] = asyncio.Queue(maxsize=queue_chunks)
        self.speaking = False  # an utterance has started and its final has not come
        self.task: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def put(self, pcm16: bytes) -> None:
        await self.audio.put(pcm16)

    async def join(self) -> None:
        """The utterance that just started goes on the one before: the asr decodes them as one."""
        await self.audio.put(Request(join_previous=asr_pb2.JoinPrevious()))

    def end_utterance(self, index: int, end_seconds: float) -> None:
        """Utterance ``index`` ends at the pause whose speculative result ended at ``end_seconds`` (its words were
        judged whole), unless the speaker went on since. Dropped when the queue is full (the asr far behind):
        the silence rule ends the utterance then."""
        with contextlib.suppress(asyncio.QueueFull):
            self.audio.put_nowait(
                Request(end_utterance=asr_pb2.EndUtterance(utterance_index=index, end_seconds=end_seconds))
            )

    async def _requests(self) -> AsyncIterator[Request]:
        yield Request(config=self.config)
        while (chunk := await self.audio.get()) is not None:
            yield chunk if isinstance(chunk, Request) else Request(audio=chunk)

    async def _run(self) -> None:
        try:
            async for reply in self.backends.recognize(self._requests):
                kind = reply.WhichOneof("event")
                if kind == "speech_started":
                    self.speaking = True
                    self.changed()
                await self.on_event(reply)
                if kind == "final":  # only once the session has acted on it (started the response)
                    self.speaking = False
                    self.changed()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the session reports it; a new listener starts on the next append
            self.failure = exc
            raise

    async def stop(self) -> None:
        """End the stream now, dropping what was not heard yet."""
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task

    @property
    def failed(self) -> bool:
        return self.task is not None and self.task.done()
