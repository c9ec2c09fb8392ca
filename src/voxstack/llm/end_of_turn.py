"""End of turn by words: how likely the user's last message is a whole turn, read off the prompt's evaluation.

A pause the turn model takes for the end of a turn is often a speaker
thinking ("What is the best way ... to cook rice?"). The words tell many of
these apart: a language model given the message without its closing
punctuation expects it either to go on ("What is the best way" -> "to") or to
end (a closing mark, or the end of the message). The probability of ending is
read from the logits at the message's last word, a position the reply's
prompt evaluates anyway: it costs one more row of logits, not another
evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: What may close a message after its last word; the words are judged without it (the asr writes it).
CLOSING = "?.!…"


def words(content: str) -> str:
    """``content`` without its closing punctuation."""
    return content.rstrip().rstrip(CLOSING + " \t\r\n\"'")


def probe_index(prompt: Sequence[int], span: tuple[int, int], head: Sequence[int]) -> int | None:
    """The prompt position of the message's last word, whose logits say what follows it: ``head`` (the
    words' tokens) must begin the message's tokens (``span`` in ``prompt``), else None (the closing mark
    merged with a word into one token; there is no position to read)."""
    start, end = span
    if not head or len(head) > end - start or list(prompt[start : start + len(head)]) != list(head):
        return None
    return start + len(head) - 1


def probability(logits: np.ndarray, ends: Sequence[int]) -> float:
    """The share of the next-token distribution on ``ends`` (end-of-message and closing tokens)."""
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max())
    return float(p[list(ends)].sum() / p.sum())


def end_tokens(llm: Any) -> tuple[int, ...]:
    """The tokens that end the words: the model's end-of-generation tokens (its end of message among them)
    and each closing mark that is a token of its own."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    ends = {t for t in range(llama_cpp.llama_vocab_n_tokens(vocab)) if llama_cpp.llama_vocab_is_eog(vocab, t)}
    for mark in CLOSING:
        tokens = llm.tokenize(mark.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) == 1:
            ends.add(tokens[0])
    return tuple(sorted(ends))
