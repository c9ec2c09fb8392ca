"""What the llama.cpp contexts' caches hold of a prompt, which context a prompt goes to, and how a context
takes the start of a prompt another one has evaluated already.

Each context caches the tokens it evaluated last. A call goes to the idle
context that reuses most of its prompt (as llama.cpp's server picks a slot).
When another context, idle or not, holds a longer start of the prompt (a new
system prompt that a concurrent call has just evaluated), the chosen context
copies that start's cache rather than evaluating it again, as llama.cpp's
server shares a prompt's cache between its slots.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

logger = logging.getLogger(__name__)

#: A shorter lead is evaluated again. A copy takes the other context's whole sequence (tens of MB for a
#: long conversation, a memory copy) to keep its start: worth it for a prompt's start, not for a word.
COPY_MIN_TOKENS = 8
_SEQUENCE = 0  # each context holds one sequence


def reuse(llm: Any, tokens: list[int]) -> int:
    """How good a context is for a prompt: the cached tokens it reuses, less the cached tokens it throws away.

    A conversation's next turn goes back to the context that holds its previous turn (only the new
    message is evaluated, as llama.cpp's server picks a slot), and another conversation, which
    shares no more than the system prompt with it, takes an empty or stale context rather than
    evicting it.
    """
    prefix = cached_prefix(llm, tokens)
    return prefix - (llm.n_tokens - prefix)


def cached_prefix(llm: Any, tokens: list[int]) -> int:
    """How many of ``tokens`` the context has evaluated already, from the start (its KV cache holds them).

    Reads llama-cpp-python's ``_input_ids``/``n_tokens`` (what its own generate() compares); the
    dependency is pinned below 0.4 for that.
    """
    return int(llm.longest_token_prefix(llm._input_ids[: llm.n_tokens].tolist(), tokens))


def take_prefix(llm: Any, others: list[Any], tokens: list[int]) -> int:
    """Copy into context ``llm`` the longest start of ``tokens`` one of ``others`` has cached, when it leads
    ``llm``'s own by COPY_MIN_TOKENS or more; the tokens gained (0: nothing copied).

    Call it while no context decodes (between TokenTurns steps): it reads another context's cache.
    ``llm``'s next evaluation drops the copied tokens past that start (llama-cpp-python removes
    every cached token past ``n_tokens`` before it evaluates).
    """
    own = cached_prefix(llm, tokens)
    donor, best = None, own
    for other in others:
        held = cached_prefix(other, tokens)
        if held > best:
            donor, best = other, held
    # One token at least is evaluated: the logits the reply starts from must be this context's own.
    best = min(best, len(tokens) - 1)
    if donor is None or best - own < COPY_MIN_TOKENS:
        return 0
    import llama_cpp

    size = llama_cpp.llama_state_seq_get_size(donor.ctx, _SEQUENCE)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(donor.ctx, buffer, size, _SEQUENCE)
    if not written or not llama_cpp.llama_state_seq_set_data(llm.ctx, buffer, written, _SEQUENCE):
        # The sequence is gone or half-written: this context starts over from an empty cache.
        llm.reset()
        logger.warning("could not copy a context's cache (%d bytes): evaluating the whole prompt", written)
        return 0
    llm.input_ids[:best] = donor.input_ids[:best]
    llm.n_tokens = best
    return best - own
