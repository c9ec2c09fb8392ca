"""When a turn the turn model ended is taken: at once when its words are whole too, else at the silence rule.

The asr's turn model ends a turn on the sound of a short pause, and it takes
many a speaker's pause for thought for the end ("What is the best way ... to
cook rice?"). The words tell many of those apart: the llm, evaluating the
reply's prompt, says how likely the message ends where its words stop
(llm/end_of_turn.py). Below ``core.turn_words_threshold`` the turn is not
taken yet: nothing of it is sent (its transcript included) until the pause has
lasted as long as the asr's silence rule waits (and speech begun by then would
have been reported), and a speaker who goes on
meanwhile is heard as one question (core/continuation.py), as if no turn had
ended. The reply is written meanwhile, so a turn taken at once or after the
wait costs no more than the silence rule would have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from voxstack.config import Settings
from voxstack.core.turn import Turn

logger = logging.getLogger(__name__)

#: How long after the asr has heard vad_min_speech_ms of speech the core has its speech_started: a VAD
#: window, the client's chunk, the hops between.
REPORT_SECONDS = 0.1


def hold_seconds(settings: Settings) -> float:
    """The longest a turn is held: until the silence rule would have ended the utterance, and then until speech
    that began before that would have been reported (the asr counts speech once it has lasted
    vad_min_speech_ms, a VAD window and a chunk later)."""
    asr = settings.asr
    return max(0.0, (asr.vad_min_silence_ms - asr.turn_silence_ms + asr.vad_min_speech_ms) / 1000 + REPORT_SECONDS)


async def until_taken(turn: Turn, settings: Settings, ended: float) -> None:
    """Return when ``turn``, whose utterance the turn model ended at ``ended`` (perf_counter), may be taken:
    once the llm judges its words whole, or gives no judgement; else when the silence rule would have ended it."""
    threshold = settings.core.turn_words_threshold
    deadline = ended + hold_seconds(settings)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(turn.judged.wait(), max(0.0, deadline - time.perf_counter()))
    whole = turn.words_whole
    if whole is None or whole >= threshold:
        return
    logger.debug("%r sounds unfinished (%.3f < %.2f): held for the silence rule", turn.text, whole, threshold)
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
