"""The speculative reply: started at the asr's pause on what was said so far, held until the utterance's final
confirms it, redone when the final says other words, dropped when speech goes on. Its words, once the llm judges
them whole enough, may end the utterance at that pause (core.turn_words_end_threshold)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from prometheus_client import Counter

from voxstack.core.turn import Turn, same_words

logger = logging.getLogger(__name__)

#: What became of a speculative reply (the ``outcome`` label of ``speculations``).
Outcome = Literal["used", "redone", "wasted"]


class SpeculativeReply:
    """At most one reply running ahead of its utterance's final. Its task runs from ``start``; what it would
    send waits on the turn's confirmation, which ``Turn.confirm`` gives and ``cancel`` never does."""

    def __init__(self, outcomes: Counter, changed: Callable[..., None], end_threshold: float = 0.0) -> None:
        self._outcomes = outcomes
        self._changed = changed  # told each time one starts or is taken away
        self._end_threshold = end_threshold  # 0: its words never end the utterance
        self._turn: Turn | None = None
        self._ending: asyncio.Task[None] | None = None  # awaits the pending one's judgement

    @property
    def pending(self) -> Turn | None:
        return self._turn

    async def start(
        self,
        turn: Turn,
        speak: Callable[[Turn], Coroutine[Any, Any, None]],
        end_utterance: Callable[[], None] | None = None,
    ) -> None:
        """Reply to ``turn`` (a speculative one, with its confirmation event) ahead of the final; one running
        already is wasted. ``end_utterance`` is called if the llm judges its words whole enough while it is
        pending: the sound did not end the utterance at this pause, and would wait for the longer silence."""
        assert turn.confirmation is not None, "a speculative reply waits for its confirmation"
        await self.drop("wasted")
        logger.debug("utterance %d paused: replying to %r before it is confirmed", turn.utterance, turn.text)
        turn.task = asyncio.create_task(speak(turn))
        self._turn = turn
        if end_utterance is not None and self._end_threshold > 0:
            self._ending = asyncio.create_task(self._end_if_whole(turn, end_utterance))
        self._changed()

    async def _end_if_whole(self, turn: Turn, end_utterance: Callable[[], None]) -> None:
        whole = await turn.judgement()
        if whole is not None and whole >= self._end_threshold and self._turn is turn:
            logger.debug("%r judged whole (%.3f): its utterance ends at this pause", turn.text, whole)
            end_utterance()

    async def drop(self, outcome: Outcome) -> None:
        """Cancel the one pending, if any."""
        await self.cancel(self.take(), outcome)

    def take(self) -> Turn | None:
        """The pending one, no longer pending: the caller confirms or cancels it."""
        turn, self._turn = self._turn, None
        if self._ending is not None:
            self._ending.cancel()
            self._ending = None
        if turn is not None:
            self._changed()
        return turn

    def use(self, turn: Turn | None, utterance: int, text: str) -> bool:
        """Whether ``turn`` (taken) answers ``utterance``'s final ``text`` and still runs: counted as used then;
        the caller confirms it (``Turn.confirm``) when the turn is taken."""
        if (
            turn is None
            or turn.utterance != utterance
            or not same_words(turn.text, text)
            or turn.task is None
            or turn.task.done()
        ):
            return False
        self._outcomes.labels("used").inc()
        return True

    async def cancel(self, turn: Turn | None, outcome: Outcome) -> None:
        """Cancel ``turn`` (taken) and wait for its task: nothing of it was heard."""
        if turn is None:
            return
        logger.debug("speculative reply to %r %s", turn.text, outcome)
        self._outcomes.labels(outcome).inc()
        if turn.task is not None:
            turn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await turn.task
