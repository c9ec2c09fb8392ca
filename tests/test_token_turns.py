"""The llm's contexts take turns a step at a time, the reply that has written least first."""

from __future__ import annotations

import threading

from voxstack.llm.turns import TokenTurns
from voxstack.testing.processes import wait_until


def test_one_context_at_a_time_and_the_newest_reply_first() -> None:
    turns = TokenTurns()
    order: list[int] = []
    running = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with turns.turn(0, written=30):
            running.set()
            release.wait(10)

    def step(context: int, written: int) -> None:
        with turns.turn(context, written):
            order.append(context)

    holder = threading.Thread(target=hold)
    holder.start()
    assert running.wait(10)
    waiting = [threading.Thread(target=step, args=args) for args in ((1, 12), (2, 0), (3, 12))]
    for thread in waiting:
        thread.start()
        wait_until(lambda t=thread: turns.waiting == waiting.index(t) + 1, "the step queued", timeout=10)
    assert order == []  # nobody runs beside the holder
    release.set()
    for thread in [holder, *waiting]:
        thread.join(10)
    assert order == [2, 1, 3]  # a new reply first; then, of two equal ones, the one that asked first
