"""Bounded concurrency for engines, and blocking work run off the event loop.

Engines are slow and CPU-bound: calls beyond ``max_concurrency`` wait in a
bounded queue (beyond ``max_queue`` they are refused with RESOURCE_EXHAUSTED),
and the blocking work runs in a thread that a cancelled call tells to stop.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from typing import TypeVar

from voxstack.errors import TooLarge

T = TypeVar("T")


class Limiter:
    """At most ``max_concurrency`` holders; at most ``max_queue`` waiters."""

    def __init__(self, name: str, max_concurrency: int, max_queue: int) -> None:
        self.name = name
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold a slot; yields the seconds spent waiting for it."""
        if self._semaphore.locked() and self._waiting >= self.max_queue:
            raise TooLarge(
                f"{self.name} is busy: {self._waiting} calls already wait (limit {self.max_queue}); retry later",
                reason="QUEUE_FULL",
            )
        self._waiting += 1
        started = time.perf_counter()
        try:
            await self._semaphore.acquire()
        finally:
            self._waiting -= 1
        try:
            yield time.perf_counter() - started
        finally:
            self._semaphore.release()


async def run_in_thread(
    executor: Executor, fn: Callable[..., T], *args: object, cancel: threading.Event | None = None
) -> T:
    """Run ``fn(*args)`` in ``executor``, keeping the caller's context (request id in logs).

    If the caller is cancelled, ``cancel`` is set so ``fn`` can stop early, and
    the caller still waits for the thread to end: the slot it holds is not free
    until the work has really stopped.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    future = loop.run_in_executor(executor, context.run, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if cancel is not None:
            cancel.set()
        await asyncio.wait([future])
        raise
