"""server/feed.py: producers feed one consumer; errors travel through; leaving cancels them."""

from __future__ import annotations

import asyncio
import threading

import pytest

from voxstack.server.feed import Feed


async def test_items_of_several_producers_arrive_until_all_have_returned() -> None:
    feed: Feed[str] = Feed()

    async def letters() -> None:
        for letter in "ab":
            feed.put(letter)
            await asyncio.sleep(0)

    async def numbers() -> None:
        for number in "12":
            feed.put(number)
            await asyncio.sleep(0)

    async with feed.running(letters, numbers):
        items = [item async for item in feed]
    assert sorted(items) == ["1", "2", "a", "b"]
    assert items.index("a") < items.index("b") and items.index("1") < items.index("2")


async def test_a_producer_error_is_raised_to_the_consumer_after_what_came_before() -> None:
    feed: Feed[int] = Feed()

    async def failing() -> None:
        feed.put(1)
        raise ValueError("broken producer")

    seen = []
    with pytest.raises(ValueError, match="broken producer"):
        async with feed.running(failing):
            async for item in feed:
                seen.append(item)
    assert seen == [1]


async def test_leaving_early_cancels_producers_and_companions() -> None:
    feed: Feed[int] = Feed()
    cancelled: list[str] = []

    async def endless() -> None:
        try:
            n = 0
            while True:
                feed.put(n)
                n += 1
                await asyncio.sleep(0.001)
        except asyncio.CancelledError:
            cancelled.append("producer")
            raise

    async def companion() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("companion")
            raise

    async with feed.running(endless, companions=[companion]):
        async for item in feed:
            if item == 3:
                break
    assert sorted(cancelled) == ["companion", "producer"]


async def test_a_thread_puts_in_order_with_the_end_of_its_producer() -> None:
    feed: Feed[int] = Feed()

    def work() -> None:
        for n in range(100):
            feed.put_threadsafe(n)

    async def produce() -> None:
        thread = threading.Thread(target=work)
        thread.start()
        await asyncio.to_thread(thread.join)

    async with feed.running(produce):
        assert [item async for item in feed] == list(range(100))
