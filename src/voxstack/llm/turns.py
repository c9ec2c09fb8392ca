"""Which llama.cpp context decodes next: one at a time with every thread, the reply that has written
the fewest tokens first.

Contexts that decode at once split the CPU: on a few cores each reply slows down, a lone one too (its
context has only its share of the threads), and a new turn's prompt is evaluated at a fraction of the
machine while another reply's tail, which nobody is waiting for yet, takes the rest. Taking turns token
by token, a new reply evaluates its prompt and writes its first sentence with all the threads, then
the replies alternate; a lone reply runs as fast as with one context.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator


class TokenTurns:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: dict[int, tuple[int, int]] = {}  # context -> (tokens written, arrival)
        self._arrivals = itertools.count()
        self._running: int | None = None

    @property
    def waiting(self) -> int:
        """Contexts waiting for their next step."""
        with self._changed:
            return len(self._waiting)

    def _next(self) -> int:
        return min(self._waiting, key=self._waiting.__getitem__)

    @contextlib.contextmanager
    def turn(self, context: int, written: int) -> Iterator[None]:
        """Blocks until ``context`` (with ``written`` tokens of its reply so far) may decode one step."""
        with self._changed:
            self._waiting[context] = (written, next(self._arrivals))
            self._changed.wait_for(lambda: self._running is None and self._next() == context)
            del self._waiting[context]
            self._running = context
        try:
            yield
        finally:
            with self._changed:
                self._running = None
                self._changed.notify_all()
