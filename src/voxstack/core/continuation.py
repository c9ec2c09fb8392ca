"""A turn the speaker goes on with before its reply is heard: withdrawn, and what they said joins the next.

The end of a turn is a guess (a pause and the turn model's answer). A speaker
who starts again before any of the reply's audio has been sent was not done:
the reply to the first part is cancelled (the client gets ``barge_in`` for
that turn, as for any reply cut short) and the next utterance's transcript is
appended to the withdrawn turn's, so that one reply answers the whole
question. A reply the speaker has begun to hear is cut short by a barge-in as
before, and answers nothing of it again. ``core.join_unheard_turns`` turns
this off.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Continuation:
    """What the withdrawn turn said, waiting for the rest."""

    text: str
    start: float  # where its first utterance starts in the asr stream: a recording of the turn covers it all

    def join(self, text: str) -> str:
        """The whole of what was said: the withdrawn turn's words, then ``text``."""
        return " ".join(part for part in (self.text.strip(), text.strip()) if part)
