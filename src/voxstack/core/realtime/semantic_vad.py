"""``semantic_vad``: an utterance the asr ended on a pause becomes a turn once its words are judged whole.

With ``server_vad`` the sound of a pause ends a turn. With ``semantic_vad``,
as on WebSocket conversations (core/turn_taking.py), the llm judges too: an
utterance the asr ended by its turn model or its silence rule is committed
(``speech_stopped``, ``committed``, its transcript, the response) at once
when the llm finds its words whole, and otherwise after a longer silence; a
speaker who goes on meanwhile is heard as one utterance, in the same item.
The judgement is the response's own prompt evaluated ahead: the response
that follows finds it in the llm's cache. The session's ``eagerness`` scales
the longer silence, as OpenAI's scales its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from voxstack.config import Settings
from voxstack.core.pipeline import Pipeline
from voxstack.core.turn_taking import HELD_RULES, until_taken
from voxstack.errors import VoxError
from voxstack.v1 import llm_pb2

logger = logging.getLogger(__name__)

#: How much longer than core.unfinished_silence_ms (or shorter) an unfinished utterance waits, by eagerness.
PATIENCE = {"low": 2.0, "medium": 1.0, "auto": 1.0, "high": 0.5}


@dataclass
class HeldUtterance:
    """An utterance the asr ended on a pause, not reported as ended until it is taken as a turn."""

    end_ms: int  # where it ended in the input audio
    rule: str  # what ended it
    text: str = ""  # its transcript, once in
    task: asyncio.Task[None] | None = None  # waits for it to be taken, from its transcript on


def holds(settings: Settings, rule: str) -> bool:
    """Whether an utterance the asr ended by ``rule`` waits for its words to be judged."""
    return rule in HELD_RULES and settings.core.turn_words_threshold > 0


async def judged(pipeline: Pipeline, request: llm_pb2.GenerateRequest) -> float | None:
    """How likely the llm finds the last user message of ``request`` a whole turn (None: it cannot say)."""
    ask = llm_pb2.GenerateRequest()
    ask.CopyFrom(request)
    ask.end_of_turn = True
    ask.sampling.max_tokens = 1  # the judgement comes before the first token; the prompt stays cached
    try:
        async with contextlib.aclosing(pipeline.complete(ask)) as replies:
            async for reply in replies:
                return reply.end_of_turn.probability if reply.WhichOneof("event") == "end_of_turn" else None
    except VoxError as exc:  # busy or failing: the response will say so; the turn is not held for it
        logger.info("the words of a pause were not judged: %s", exc)
    return None


async def until_whole(
    pipeline: Pipeline, request: llm_pb2.GenerateRequest, text: str, ended: float, rule: str, eagerness: str
) -> None:
    """Return when the utterance of ``text``, ended at ``ended`` (perf_counter) by ``rule``, is a turn."""
    started = time.perf_counter()
    judgement = judged(pipeline, request)
    await until_taken(judgement, text, pipeline.settings, ended, rule, PATIENCE.get(eagerness, 1.0))
    logger.debug("%r taken %.3f s after its final", text, time.perf_counter() - started)
