"""Bounded concurrency and cancellable blocking work."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from voxstack.errors import TooLarge
from voxstack.server.worker import Limiter, Worker, run_in_thread


async def test_queue_beyond_its_limit_is_refused() -> None:
    limiter = Limiter("asr", max_concurrency=1, max_queue=1)
    release = asyncio.Event()
    order: list[str] = []

    async def hold(name: str) -> None:
        async with limiter.slot() as waited:
            order.append(name)
            assert waited >= 0
            await release.wait()

    first = asyncio.create_task(hold("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(hold("second"))
    await asyncio.sleep(0)
    assert limiter.waiting == 1
    with pytest.raises(TooLarge, match="asr is busy: 1 calls already wait"):
        async with limiter.slot():
            pass
    release.set()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]


async def test_cancelled_caller_stops_the_thread_and_waits_for_it() -> None:
    cancel = threading.Event()
    steps: list[int] = []

    def work(flag: threading.Event) -> int:
        for i in range(200):
            if flag.is_set():
                break
            steps.append(i)
            time.sleep(0.01)
        return len(steps)

    with ThreadPoolExecutor(1) as executor:
        task = asyncio.create_task(run_in_thread(executor, work, cancel, cancel=cancel))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stopped_at = len(steps)
        assert cancel.is_set()
        assert stopped_at < 200
        await asyncio.sleep(0.05)
        assert len(steps) == stopped_at  # the thread had really stopped before the await returned
        assert await run_in_thread(executor, lambda: 7) == 7


async def test_a_worker_times_its_jobs_and_refuses_past_its_queue() -> None:
    worker = Worker("tts", max_concurrency=1, max_queue=1)
    gate = threading.Event()

    def job(cancel: threading.Event, value: int) -> int:
        gate.wait(5)
        return value * 2

    try:
        first = asyncio.create_task(worker.run(job, 1))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(worker.run(job, 2))
        await asyncio.sleep(0.05)
        with pytest.raises(TooLarge) as refused:
            await worker.run(job, 3)
        assert refused.value.reason == "QUEUE_FULL"
        gate.set()
        done_first, done_second = await first, await second
        assert (done_first.value, done_second.value) == (2, 4)
        assert done_second.queue_seconds >= 0.04  # it waited for the first
        assert done_first.processing_seconds >= 0.09
    finally:
        gate.set()
        worker.close()


async def test_a_cancelled_worker_job_is_told_to_stop_and_frees_its_slot() -> None:
    worker = Worker("asr", max_concurrency=1, max_queue=0)
    stopped = threading.Event()

    def job(cancel: threading.Event) -> str:
        cancel.wait(5)
        stopped.set()
        return "stopped"

    try:
        task = asyncio.create_task(worker.run(job))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert stopped.is_set()  # the thread ended before the slot was given back
        assert (await worker.run(lambda cancel: "next")).value == "next"
    finally:
        worker.close()
