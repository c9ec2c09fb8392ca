"""Stream what background tasks produce: one queue, an end marker, errors carried through.

The asr's streams, the llm's decoding thread, the core's reply (llm writing
while tts speaks) and the dev watcher's two watchers all have the same shape:
producers put items while one consumer reads them in order. ``Feed`` does it
once: iterated inside ``running(...)``, it yields items until every
producer has returned and raises the first error a producer raised; leaving
the block cancels them all and awaits their end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Producer = Callable[[], Coroutine[Any, Any, None]]


class _End:
    """A producer has returned."""


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Feed(Generic[T]):
    """Items put by producers, read by one consumer that iterates it inside ``running``."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[T | _End | _Failed] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = 0

    def put(self, item: T) -> None:
        """Add an item (from the event loop's thread)."""
        self._queue.put_nowait(item)

    def put_threadsafe(self, item: T) -> None:
        """Add an item from another thread (a blocking engine's); order with ``put`` is kept."""
        assert self._loop is not None, "put_threadsafe is for producers started by running()"
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    @asynccontextmanager
    async def running(self, *producers: Producer, companions: Iterable[Producer] = ()) -> AsyncIterator[Feed[T]]:
        """Run ``producers`` (and ``companions``, which may put items but are not waited for) as tasks.

        Iterate the feed inside the block: it yields what is put until every
        producer has returned. Leaving the block, early or not, cancels
        whatever still runs and waits for it.
        """
        self._loop = asyncio.get_running_loop()

        async def produce(producer: Producer) -> None:
            try:
                await producer()
            except BaseException as exc:
                self._queue.put_nowait(_Failed(exc))
                raise
            finally:
                self._queue.put_nowait(_End())

        self._running = len(producers)
        tasks = [asyncio.create_task(produce(p)) for p in producers]
        helpers = [asyncio.create_task(c()) for c in companions]
        try:
            yield self
        finally:
            for task in (*tasks, *helpers):
                task.cancel()
            await asyncio.gather(*tasks, *helpers, return_exceptions=True)

    def __aiter__(self) -> Feed[T]:
        return self

    async def __anext__(self) -> T:
        while self._running:
            item = await self._queue.get()
            if isinstance(item, _End):
                self._running -= 1
            elif isinstance(item, _Failed):
                raise item.error
            else:
                return item
        raise StopAsyncIteration
