"""Which of the llm's slots a prompt goes to: the one whose cache reuses most of it.

Each slot (llm/batch.py) caches the tokens it evaluated last. A call goes to
the idle slot that reuses most of its prompt, as llama.cpp's server picks a
slot.
"""

from __future__ import annotations

from itertools import takewhile


def common_prefix(cached: list[int], tokens: list[int]) -> int:
    """How many of ``tokens`` ``cached`` holds already, from the start."""
    return sum(1 for _ in takewhile(lambda pair: pair[0] == pair[1], zip(cached, tokens, strict=False)))


def reuse(cached: list[int], tokens: list[int]) -> int:
    """How good a slot holding ``cached`` is for a prompt: the cached tokens it reuses, less the cached
    tokens it throws away.

    A conversation's next turn goes back to the slot that holds its previous turn (only the new message is
    evaluated), and another conversation, which shares no more than the system prompt with it, takes an
    empty or stale slot rather than evicting it.
    """
    prefix = common_prefix(cached, tokens)
    return prefix - (len(cached) - prefix)
