"""One reply on the WebSocket: what it answers, and whether it is still speculative."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from voxstack.core.pipeline import Tools
from voxstack.recordings import Pcm

#: Speech the asr reports within this long after a reply's first audio went out began before the speaker
#: could hear and react to it: the VAD reports speech about 0.2 s after it begins, and people take 0.2 s or
#: more to react to what they hear, after the client's own playback delay.
REACTION_SECONDS = 0.5


def same_words(a: str, b: str) -> bool:
    """Whether two transcripts say the same words (case and punctuation aside)."""
    return re.findall(r"\w+", a.lower()) == re.findall(r"\w+", b.lower())


@dataclass
class Turn:
    """A reply to ``text``; with a ``confirmation`` event, a speculative one that must not be heard until the event
    is set (the end of the utterance confirms it)."""

    number: int
    text: str
    started: float  # perf_counter when its work began
    asr_decode: float = 0.0
    utterance: int = -1
    confirmation: asyncio.Event | None = None  # set when the end of the utterance confirms the speculation
    speech_end: float = 0.0  # perf_counter of the end of the speech it answers
    task: asyncio.Task[None] | None = None
    heard: Pcm | None = None  # the utterance's audio, when turns are recorded (None for a typed turn)
    typed: bool = False
    tools: Tools = field(default_factory=Tools)  # what the reply may call, and the calls and results so far
    first_audio_sent: float = 0.0  # perf_counter when the reply's first audio was sent (0: none yet)
    replied: bool = False  # its reply_done is out: the task only winds down, nothing to barge in on
    # How likely its words are a whole turn, as the llm judged them (None: not judged); ``judged`` is set once
    # that is known, or known not to come.
    words_whole: float | None = None
    judged: asyncio.Event = field(default_factory=asyncio.Event)

    def unheard(self, speech_started: float) -> bool:
        """Whether the speaker, who started speaking again at ``speech_started`` (perf_counter, when the asr said
        so), cannot have reacted to this turn's reply: a spoken turn, no tool call part of it, whose first audio
        was not sent or was sent less than REACTION_SECONDS before. They were not done (core.continuation)."""
        if self.typed or self.tools.exchange:
            return False
        return not self.first_audio_sent or speech_started - self.first_audio_sent < REACTION_SECONDS

    def __post_init__(self) -> None:
        if self.confirmation is None:
            self.speech_end = self.started

    @property
    def confirmed(self) -> bool:
        return self.confirmation is None or self.confirmation.is_set()

    @property
    def lead(self) -> float:
        """How long before the end of the speech the reply started (0 unless speculative)."""
        return max(0.0, self.speech_end - self.started) if self.confirmation is not None else 0.0

    def confirm(self, asr_decode: float, speech_end: float) -> None:
        assert self.confirmation is not None, "only a speculative turn is confirmed"
        self.asr_decode = asr_decode
        self.speech_end = speech_end
        self.confirmation.set()

    async def judgement(self) -> float | None:
        """The llm's judgement of the words, once it is known (None: it gives none)."""
        await self.judged.wait()
        return self.words_whole

    def judge(self, probability: float | None) -> None:
        """The llm's judgement of the words (None: it gives none), once."""
        if not self.judged.is_set():
            self.words_whole = probability
            self.judged.set()

    async def wait(self) -> None:
        """Until the turn may be heard."""
        if self.confirmation is not None:
            await self.confirmation.wait()
