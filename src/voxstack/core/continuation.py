"""A turn the speaker goes on with before its reply is heard: withdrawn, and what they said joins the next.

The end of a turn is a guess (a pause and the turn model's answer). A speaker
who starts again before any of the reply's audio has been sent, or too soon
after it to have heard it (``turn.REACTION_SECONDS``), was not done:
the reply to the first part is cancelled (the client gets ``barge_in`` for
that turn, as for any reply cut short) and one reply answers the whole
question. The asr is asked to decode both utterances as one (JoinPrevious):
Whisper hears the second part better with the first before it. When it no
longer holds the first part's audio, the texts are joined. A reply the
speaker has begun to hear is cut short by a barge-in as before, and answers
nothing of it again. ``core.join_unheard_turns`` turns this off.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxstack.v1 import asr_pb2


@dataclass(frozen=True)
class Continuation:
    """What the withdrawn turn said, waiting for the rest."""

    text: str
    start: float  # where its first utterance starts in the asr stream: a recording of the turn covers it all

    def join(self, heard: asr_pb2.RecognitionResult) -> str:
        """The whole of what was said: the asr's result for both utterances decoded as one (``joins_previous``),
        else the withdrawn turn's words and then the result's (the asr no longer held the first part)."""
        if heard.joins_previous:
            return heard.text
        return " ".join(part for part in (self.text.strip(), heard.text.strip()) if part)
