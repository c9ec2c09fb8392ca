"""``semantic_vad``: an utterance the asr ended on a pause becomes a turn once its words are judged whole.

With ``server_vad`` the sound of a pause ends a turn. With ``semantic_vad``,
as on WebSocket conversations (core/turn_taking.py), the llm judges too: an
utterance the asr ended by its turn model or its silence rule is committed
(``speech_stopped``, ``committed``, its transcript, the response) at once
when the llm finds its words whole, and otherwise after a longer silence; a
speaker who goes on meanwhile is heard as one utterance, in the same item.
The judgement is asked in the response's own llm call, which goes on with
the reply once the utterance is taken (a new one is made when the words were
unfinished, or the response's request is not the one judged). The session's
``eagerness`` scales the longer silence, as OpenAI's scales its timeout.

At a pause the turn model did not end, the words so far (the asr's
speculative result) are judged the same way (``PauseJudgement``): whole
enough (``core.turn_words_end_threshold``), they end the utterance there (the
asr's rule ``words``) instead of its longer silence, and the judging call is
the response's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from voxstack.config import Settings
from voxstack.core.pipeline import Pipeline
from voxstack.core.turn_taking import HELD_RULES, until_taken
from voxstack.errors import VoxError
from voxstack.v1 import llm_pb2

logger = logging.getLogger(__name__)

#: How much longer than core.unfinished_silence_ms (or shorter) an unfinished utterance waits, by eagerness.
PATIENCE = {"low": 2.0, "medium": 1.0, "auto": 1.0, "high": 0.5}


Call = AsyncGenerator[llm_pb2.GenerateResponse, None]


@dataclass
class HeldUtterance:
    """An utterance the asr ended on a pause, not reported as ended until it is taken as a turn."""

    end_ms: int  # where it ended in the input audio
    rule: str  # what ended it
    text: str = ""  # its transcript, once in
    task: asyncio.Task[None] | None = None  # waits for it to be taken, from its transcript on
    # The response's llm call, started to judge the words and going on with the reply once they are whole.
    request: llm_pb2.GenerateRequest | None = None
    call: Call | None = None

    def take(self, request: llm_pb2.GenerateRequest) -> Call | None:
        """The started call, for the response whose request is ``request``, if it is the one judged."""
        call, self.call = self.call, None
        if call is not None and request == self.request:
            return call
        self.call = call  # another request: closed with the utterance
        return None

    async def close(self) -> None:
        """The started call is not the response's after all."""
        call, self.call = self.call, None
        if call is not None:
            await call.aclose()


@dataclass
class PauseJudgement:
    """The words of a pause the asr's turn model did not end (its speculative result), judged in the call a
    response to them would use (``held``), while the pause goes on."""

    held: HeldUtterance
    task: asyncio.Task[None] = field(init=False)
    probability: float | None = None  # the judgement, once in (None: none came)

    def start(self, pipeline: Pipeline, end_utterance: Callable[[], None]) -> None:
        self.task = asyncio.create_task(self._judge(pipeline, end_utterance))

    async def _judge(self, pipeline: Pipeline, end_utterance: Callable[[], None]) -> None:
        self.probability = await judged(pipeline, self.held)
        if self.probability is not None and self.probability >= pipeline.settings.core.turn_words_end_threshold:
            logger.debug("%r judged whole (%.3f): its utterance ends at this pause", self.held.text, self.probability)
            end_utterance()

    async def handed_to(self, held: HeldUtterance) -> float | None:
        """This judgement, and its call, for ``held``: the same words, which another rule ended (the turn model
        or the silence, before or without the words' end)."""
        try:
            await self.task
        except Exception:  # unjudged: held is taken as when the llm gives no judgement
            logger.exception("judging the words of a pause failed")
            return None
        held.request, held.call = self.held.request, self.held.call
        self.held.call = None
        return self.probability

    async def close(self) -> None:
        """The speaker went on, or the utterance ended otherwise: no response takes its call."""
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        except Exception:  # the pause's words went unjudged: the asr's silence rule ends the utterance
            logger.exception("judging the words of a pause failed")
        await self.held.close()


def ends_pauses(settings: Settings) -> bool:
    """Whether whole words end a pause the asr's turn model did not."""
    return settings.core.turn_words_end_threshold > 0


def holds(settings: Settings, rule: str) -> bool:
    """Whether an utterance the asr ended by ``rule`` waits for its words to be judged."""
    return rule in HELD_RULES and settings.core.turn_words_threshold > 0


async def judged(pipeline: Pipeline, held: HeldUtterance) -> float | None:
    """How likely the llm finds ``held``'s words a whole turn (None: it cannot say). Asked in the response's own
    call (``held.request``), which ``held.call`` keeps, its reply to come, while the words may be whole."""
    assert held.request is not None
    ask = llm_pb2.GenerateRequest()
    ask.CopyFrom(held.request)
    ask.end_of_turn = True
    call = pipeline.complete(ask)
    try:
        first = await call.__anext__()
    except StopAsyncIteration:
        return None
    except VoxError as exc:  # busy or failing: the response will say so; the turn is not held for it
        logger.info("the words of a pause were not judged: %s", exc)
        return None
    except BaseException:  # cancelled: past the longest hold, or the speaker went on
        await call.aclose()
        raise
    if first.WhichOneof("event") != "end_of_turn":  # no judgement: the reply's own first event is gone with it
        await call.aclose()
        return None
    probability = first.end_of_turn.probability
    if probability >= pipeline.settings.core.turn_words_threshold:
        held.call = call
    else:  # unfinished: no reply is written to it meanwhile; one taken later asks anew (its prompt cached)
        await call.aclose()
    return probability


async def until_whole(
    pipeline: Pipeline, held: HeldUtterance, ended: float, eagerness: str, pause: PauseJudgement | None = None
) -> None:
    """Return when ``held``, ended at ``ended`` (perf_counter), is a turn; its words judged already at the
    ``pause`` it ended at, if given."""
    started = time.perf_counter()
    judgement = pause.handed_to(held) if pause is not None else judged(pipeline, held)
    await until_taken(judgement, held.text, pipeline.settings, ended, held.rule, PATIENCE.get(eagerness, 1.0))
    logger.debug("%r taken %.3f s after its final", held.text, time.perf_counter() - started)
