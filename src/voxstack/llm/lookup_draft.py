"""Drafts from the context (prompt lookup decoding): the tokens that followed the reply's latest words
where they appear earlier in the prompt or the reply.

A spoken answer repeats the question's words ("What is the capital of
France?" -> "The capital of France is Paris."). The batcher evaluates such a
draft with the reply's next token in one step, which on a CPU costs little
more than a step for one token (the weights are read once), and keeps the
drafted tokens the model would have written itself: the reply is the same,
written in fewer steps (where two tokens nearly tie, the rounding of the
step of several tokens may pick the other one, as in any batched
evaluation: on the bench's 55 questions, 2 replies said the same words in
another order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The longest run of the latest tokens looked up: a longer match is a surer draft.
LONGEST_MATCH = 3


def draft(context: Sequence[int], limit: int) -> list[int]:
    """Up to ``limit`` tokens that followed the earlier place where the longest run (up to LONGEST_MATCH) of
    ``context``'s last tokens appears, the latest such place; none when its last token appears nowhere before."""
    if limit <= 0 or len(context) < 2:
        return []
    tokens = np.asarray(context, dtype=np.int64)
    end = tokens.size - 1
    best, best_length = -1, 0
    for at in np.flatnonzero(tokens[:end] == tokens[end])[::-1]:  # the latest first
        length = 1
        while length < LONGEST_MATCH and at - length >= 0 and tokens[at - length] == tokens[end - length]:
            length += 1
        if length > best_length:
            best, best_length = int(at), length
            if length == LONGEST_MATCH:
                break
    if best < 0:
        return []
    return [int(t) for t in tokens[best + 1 : best + 1 + limit]]
