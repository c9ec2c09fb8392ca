"""Bounded concurrency for engines, and blocking work run off the event loop.

Engines are slow and CPU-bound: calls beyond ``max_concurrency`` wait in a
bounded queue (beyond ``max_queue`` they are refused with RESOURCE_EXHAUSTED),
and the blocking work runs in a thread that a cancelled call tells to stop.
``Worker`` puts the three together and times each job; asr, llm and tts each
hold one instead of writing the bookkeeping again.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from voxstack.codes import ErrorCode
from voxstack.errors import Busy
from voxstack.metrics.catalog import ServiceMetrics
from voxstack.tracing import tracer

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
            raise Busy(
                f"{self.name} is busy: {self._waiting} calls already wait (limit {self.max_queue}); retry later",
                reason=ErrorCode.QUEUE_FULL,
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
    executor: Executor | None, fn: Callable[..., T], *args: object, cancel: threading.Event | None = None
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


@dataclass(frozen=True)
class Timed(Generic[T]):
    """A job's result, the seconds it waited for a slot and the seconds it ran."""

    value: T
    queue_seconds: float
    processing_seconds: float


class Worker:
    """One engine's threads: ``max_concurrency`` jobs at once, ``max_queue`` waiting, cancellable; its queue
    and load in ``metrics`` when given."""

    def __init__(
        self,
        name: str,
        max_concurrency: int,
        max_queue: int,
        metrics: ServiceMetrics | None = None,
        job: str = "work",
    ) -> None:
        self.name = name
        self.job = job  # what a job is called in traces: decode, synthesize, ...
        self.limiter = Limiter(name, max_concurrency, max_queue)
        self.metrics = metrics
        if metrics is not None:
            metrics.waiting.labels(name).set_function(lambda: self.limiter.waiting)
        # Threads start on first use: a worker whose engine runs its own costs nothing.
        self.executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=name)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold a slot across several jobs (``call``); yields the seconds waited."""
        metrics = self.metrics
        async with contextlib.AsyncExitStack() as stack:
            with tracer().start_as_current_span(f"{self.name} queue"):
                try:
                    queued = await stack.enter_async_context(self.limiter.slot())
                except Busy:
                    if metrics is not None:
                        metrics.refused.labels(self.name).inc()
                    raise
            if metrics is None:
                yield queued
                return
            metrics.queue_seconds.labels(self.name).observe(queued)
            metrics.running.labels(self.name).inc()
            try:
                yield queued
            finally:
                metrics.running.labels(self.name).dec()

    async def call(self, fn: Callable[..., T], *args: object) -> Timed[T]:
        """``fn(cancel, *args)`` in a thread, for a caller that holds a slot; ``cancel`` is set if it is cancelled."""
        cancel = threading.Event()
        began = time.perf_counter()
        with tracer().start_as_current_span(f"{self.name} {self.job}"):
            value = await run_in_thread(self.executor, fn, cancel, *args, cancel=cancel)
        return Timed(value, 0.0, time.perf_counter() - began)

    async def run(self, fn: Callable[..., T], *args: object) -> Timed[T]:
        """``fn(cancel, *args)`` in a thread once a slot is free; refused with QUEUE_FULL past the queue limit."""
        async with self.slot() as queued:
            done = await self.call(fn, *args)
        return Timed(done.value, queued, done.processing_seconds)

    def close(self) -> None:
        """Wait for running jobs; drop queued ones."""
        self.executor.shutdown(wait=True, cancel_futures=True)
