"""Bounded concurrency and cancellable blocking work."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from voxstack.errors import TooLarge
from voxstack.server.limiter import Limiter, run_in_thread


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
