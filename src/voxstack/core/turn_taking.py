"""When a turn the asr ended is taken: at once when its words are whole too, else after a longer silence.

The asr ends a turn on the sound of a pause: its turn model after a short
one, its silence rule after a longer one. Both take many a speaker's pause
for thought for the end ("What is the best way ... to cook rice?"). The words
tell many of those apart: the llm, evaluating the reply's prompt, says how
likely the message ends where its words stop (llm/end_of_turn.py). Below
``core.turn_words_threshold`` the turn is not taken yet: nothing of it is sent
(its transcript included) until the silence has lasted
``core.unfinished_silence_ms`` (and speech begun by then would have been
reported), and a speaker who goes on meanwhile is heard as one question
(core/continuation.py), as if no turn had ended. The reply is written
meanwhile, and a whole question's judgement comes with its first token, so a
turn taken at once holds back nothing the client would have had sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable

from voxstack.config import Settings

logger = logging.getLogger(__name__)

#: How long after the asr has heard vad_min_speech_ms of speech the core has its speech_started: a VAD
#: window, the client's chunk, the hops between.
REPORT_SECONDS = 0.1
#: The ends of an utterance whose turn may be held (a closed stream or an utterance too long is not).
HELD_RULES = ("turn_model", "silence")


def hold_seconds(settings: Settings, rule: str, patience: float = 1.0) -> float:
    """The longest a turn the asr ended by ``rule`` is held after its speech_ended: until the silence reaches
    unfinished_silence_ms (times ``patience``), and then until speech begun by then would have been reported
    (the asr counts speech once it has lasted vad_min_speech_ms)."""
    asr = settings.asr
    heard = asr.turn_silence_ms if rule == "turn_model" else asr.vad_min_silence_ms
    waited = settings.core.unfinished_silence_ms * patience - heard
    return max(0.0, (waited + asr.vad_min_speech_ms) / 1000 + REPORT_SECONDS) if waited > 0 else 0.0


async def until_taken(
    judgement: Awaitable[float | None], text: str, settings: Settings, ended: float, rule: str, patience: float = 1.0
) -> None:
    """Return when the turn of ``text``, whose utterance the asr ended at ``ended`` (perf_counter) by ``rule``,
    may be taken: once ``judgement`` (how likely the llm finds its words whole) says they are, or that it
    gives none; else when the longer silence has passed."""
    threshold = settings.core.turn_words_threshold
    deadline = ended + hold_seconds(settings, rule, patience)
    # Not asyncio.wait_for: before Python 3.12 it returns a result that comes as the caller is cancelled, and
    # the caller (a speaker who went on) would then hold the turn it meant to drop.
    asked = asyncio.ensure_future(judgement)
    try:
        await asyncio.wait({asked}, timeout=max(0.0, deadline - time.perf_counter()))
    finally:
        if not asked.done():
            asked.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asked
    whole = asked.result() if not asked.cancelled() else None
    if whole is None or whole >= threshold:
        return
    logger.debug("%r sounds unfinished (%.3f < %.2f): held for a longer silence", text, whole, threshold)
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
