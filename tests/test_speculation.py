"""The speculative reply on its own: what it sends waits for the confirmation; other words redo it, speech
going on wastes it; each outcome is counted once, and each change is told to the hand-over's wait."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter

from voxstack.core.speculation import SpeculativeReply
from voxstack.core.turn import Turn


def outcomes() -> Counter:
    return Counter("speculations", "test", ["outcome"], registry=CollectorRegistry())


def count(counter: Counter, outcome: str) -> float:
    samples = [s for metric in counter.collect() for s in metric.samples if s.name == "speculations_total"]
    return sum(s.value for s in samples if s.labels == {"outcome": outcome})


def speculative(text: str, utterance: int = 0) -> Turn:
    return Turn(1, text, started=0.0, utterance=utterance, confirmation=asyncio.Event())


async def test_a_confirmed_reply_is_heard_only_after_its_confirmation() -> None:
    counter, changes, sent = outcomes(), [], []
    reply = SpeculativeReply(counter, lambda *_: changes.append(1))

    async def speak(turn: Turn) -> None:
        await turn.wait()
        sent.append(turn.text)

    turn = speculative("What time is it?")
    await reply.start(turn, speak)
    await asyncio.sleep(0.05)
    assert reply.pending is turn and sent == []  # written ahead, held back
    taken = reply.take()
    assert taken is turn and reply.pending is None
    assert reply.use(taken, 0, "what time is it")  # case and punctuation aside
    taken.confirm(asr_decode=0.2, speech_end=1.0)
    assert turn.task is not None
    await turn.task
    assert sent == ["What time is it?"] and turn.asr_decode == 0.2
    assert count(counter, "used") == 1 and changes  # started and taken: both told


async def test_other_words_or_another_utterance_are_not_confirmed_and_redone() -> None:
    counter = outcomes()
    reply = SpeculativeReply(counter, lambda *_: None)
    heard = asyncio.Event()

    async def speak(turn: Turn) -> None:
        await turn.wait()
        heard.set()

    turn = speculative("What time")
    await reply.start(turn, speak)
    taken = reply.take()
    assert not reply.use(taken, 0, "What time is it?")
    assert not reply.use(taken, 1, "What time")  # the same words of a later utterance
    await reply.cancel(taken, "redone")
    assert turn.task is not None and turn.task.cancelled() and not heard.is_set()
    assert count(counter, "redone") == 1 and count(counter, "used") == 0


async def test_a_new_pause_wastes_the_reply_before_it() -> None:
    counter = outcomes()
    reply = SpeculativeReply(counter, lambda *_: None)

    async def speak(turn: Turn) -> None:
        await turn.wait()

    first, second = speculative("What"), speculative("What time is it?")
    await reply.start(first, speak)
    await reply.start(second, speak)
    assert reply.pending is second
    assert first.task is not None and first.task.cancelled()
    await reply.drop("wasted")
    assert reply.pending is None and second.task is not None and second.task.cancelled()
    assert count(counter, "wasted") == 2
    await reply.drop("wasted")  # nothing pending: nothing counted
    assert count(counter, "wasted") == 2
