"""Several replies written together in one llama.cpp context, a token of each per step (continuous batching).

On a CPU a step's cost is mostly reading the weights, so a step that writes
a token of two replies costs much less than two steps: replies written
together each go faster than replies taking turns. A new call's prompt goes
into the same steps as the other replies' next tokens (in chunks of at most
``batch`` tokens), as llama.cpp's server does with its slots.

Each reply is a sequence of the context's cache (a slot). A slot keeps the
tokens it evaluated last, so a conversation's next turn evaluates only its
new message (llm/prompt_cache.py picks the slot); a longer start of a
prompt that another slot holds (a new system prompt a concurrent call has
just evaluated) is shared with it in the cache rather than evaluated again.
All cache changes happen on the one thread that decodes, between steps.

A reply written alone checks a draft of its next tokens in the step that
evaluates its last one (llm/lookup_draft.py): the tokens it would have
written itself are kept, the cache of the others dropped.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxstack.llm import end_of_turn
from voxstack.llm.engine import Delta, EndOfTurn, Event, Finished, Sampling
from voxstack.llm.lookup_draft import draft
from voxstack.llm.prompt_cache import common_prefix

logger = logging.getLogger(__name__)

#: llama-cpp-python's completion defaults, which the replies were tuned with: kept so that a sampled reply
#: (temperature above 0) draws from the same candidates as before.
TOP_K = 40
MIN_P = 0.05
PENALTY_LAST_N = 64
#: A reply this many tokens ahead of the one that has written least waits for it. Its tail is not being
#: heard yet, while the other (a new turn) is awaited from its first word; and a step for one reply is
#: quicker than a step for two.
LEAD = 8


@dataclass
class Call:
    """One reply: its prompt, how to sample it, where its events go."""

    prompt: list[int]
    sampling: Sampling
    stop: list[str]
    max_tokens: int
    repeat_penalty: float
    slot: int
    emit: Callable[[Event], None]
    cancel: threading.Event
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens still to evaluate
    next_token: int | None = None  # sampled, not yet evaluated
    written: int = 0
    sampler: Any = None
    text: StopText | None = None
    # The prompt position whose logits say whether the user's words end there (llm/end_of_turn.py), and the
    # tokens that end them; an EndOfTurn goes out once it is evaluated.
    probe: int | None = None
    ends: tuple[int, ...] = ()
    drafted: int = 0  # drafted tokens checked, and of those kept (llm/lookup_draft.py)
    kept: int = 0


class StopText:
    """A reply's text as its tokens come: UTF-8 split across tokens joined, and text that may be the start
    of a stop string held back until it is known not to be one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""

    def feed(self, piece: bytes) -> tuple[str, bool]:
        """The text that may be sent now, and whether a stop string ended the reply (its text is not sent)."""
        self._held += self._decoder.decode(piece)
        found = [i for i in (self._held.find(s) for s in self.stops) if i >= 0]
        if found:
            text, self._held = self._held[: min(found)], ""
            return text, True
        keep = max((n for s in self.stops for n in range(1, len(s)) if self._held.endswith(s[:n])), default=0)
        text, self._held = self._held[: len(self._held) - keep], self._held[len(self._held) - keep :]
        return text, False

    def rest(self) -> str:
        text, self._held = self._held + self._decoder.decode(b"", final=True), ""
        return text


class Batcher:
    """``slots`` sequences of one llama.cpp context over ``llm``'s weights, decoded by one thread."""

    def __init__(
        self, llm: Any, slots: int, slot_tokens: int, threads: int, batch: int = 512, draft_tokens: int = 0
    ) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm  # owns the weights the context reads: kept alive as long as it
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = slots * slot_tokens
        params.n_batch = params.n_ubatch = batch
        params.n_seq_max = slots
        params.kv_unified = True  # one cache: slots share the cells of a common start
        params.n_threads = params.n_threads_batch = threads
        #: The llama.cpp context (llama_context_p); only the decoding thread uses it while replies are written.
        self.context = llama_cpp.llama_init_from_model(llm.model, params)
        if not self.context:
            raise RuntimeError(f"llama.cpp could not make a context of {params.n_ctx} tokens")
        self.slot_tokens = llama_cpp.llama_n_ctx(self.context) // slots
        self.batch = batch
        self.draft_tokens = draft_tokens
        self._batch = llama_cpp.llama_batch_init(batch, 0, 1)
        self._memory = llama_cpp.llama_get_memory(self.context)
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._piece = (ctypes.c_char * 256)()
        #: What each slot's cache holds: the tokens it evaluated, from the start.
        self.cached: list[list[int]] = [[] for _ in range(slots)]
        self._incoming: list[Call] = []
        self._active: list[Call] = []
        self._changed = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="llm-batch", daemon=True)
        self._thread.start()

    def write(self, call: Call) -> None:
        """Write ``call``'s reply, its events to ``call.emit``; returns when it has ended (Finished sent)."""
        with self._changed:
            if self._closing:
                raise RuntimeError("the llm is shutting down")
            self._incoming.append(call)
            self._changed.notify_all()
        call.done.wait()
        if call.error is not None:
            raise call.error

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()
        self._lib.llama_batch_free(self._batch)
        self._lib.llama_free(self.context)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._incoming or self._active or self._closing)
                if self._closing:
                    for call in [*self._incoming, *self._active]:
                        self._end(call, "cancelled")
                    return
                incoming, self._incoming = self._incoming, []
            for call in incoming:
                try:
                    self._admit(call)
                except Exception as exc:  # the call ends with the error; the others go on
                    self._fail([call], exc)
            try:
                self._step()
            except Exception as exc:  # llama.cpp failed a step: its replies end with the error, the next go on
                self._fail(list(self._active), exc)

    def _fail(self, calls: list[Call], exc: Exception) -> None:
        logger.error("an llm step failed: %s", exc, exc_info=exc)
        for call in calls:
            self._forget(call.slot)
            call.error = exc
            self._end(call, "error")

    def _admit(self, call: Call) -> None:
        """Start ``call`` in its slot: keep what the slot's cache holds of the prompt, or share a longer
        start another slot holds; at least one token is evaluated (the reply starts from its logits)."""
        lib, slot, prompt = self._lib, call.slot, call.prompt
        # The probe's position is evaluated again when a cache holds it: its logits are not kept.
        limit = len(prompt) - 1 if call.probe is None else min(len(prompt) - 1, call.probe)
        keep = min(common_prefix(self.cached[slot], prompt), limit)
        donor, best = None, keep
        for other, held in enumerate(self.cached):
            shared = min(common_prefix(held, prompt), limit)
            if other != slot and shared > best:
                donor, best = other, shared
        if donor is not None:
            lib.llama_memory_seq_rm(self._memory, slot, -1, -1)
            lib.llama_memory_seq_cp(self._memory, donor, slot, 0, best)
            logger.debug("slot %d took %d prompt tokens from slot %d's cache", slot, best - keep, donor)
            keep = best
        elif not lib.llama_memory_seq_rm(self._memory, slot, keep, -1):
            self._forget(slot)
            keep = 0
        self.cached[slot] = prompt[:keep]
        call.pending = prompt[keep:]
        call.sampler = self._sampler(call)
        call.text = StopText(call.stop)
        self._active.append(call)

    def _sampler(self, call: Call) -> Any:
        lib, s = self._lib, call.sampling
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        parts = []
        if call.repeat_penalty != 1.0:
            n_vocab = lib.llama_vocab_n_tokens(self._vocab)
            parts.append(lib.llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N, call.repeat_penalty, 0.0, 0.0))
        if s.temperature == 0:
            parts.append(lib.llama_sampler_init_greedy())
        else:
            seed = lib.LLAMA_DEFAULT_SEED if s.seed is None else s.seed
            parts += [
                lib.llama_sampler_init_top_k(TOP_K),
                lib.llama_sampler_init_top_p(s.top_p, 1),
                lib.llama_sampler_init_min_p(MIN_P, 1),
                lib.llama_sampler_init_temp(s.temperature),
                lib.llama_sampler_init_dist(seed),
            ]
        for part in parts:
            lib.llama_sampler_chain_add(chain, part)  # the chain owns it
        return chain

    def _step(self) -> None:
        """One decode: the next token of every reply not LEAD ahead, then prompt tokens as the batch has room."""
        for call in [c for c in self._active if c.cancel.is_set()]:
            self._end(call, "cancelled")
        lib, batch = self._lib, self._batch
        least = min((c.written for c in self._active), default=0)
        steps = [c for c in self._active if c.written - least <= LEAD]
        # call, its tokens in this step, logits wanted for its last token, drafted tokens (logits for each)
        entries: list[tuple[Call, list[int], bool, int]] = []
        room = self.batch
        alone = len(self._active) == 1  # with others, the batch's rows are theirs: no drafts
        for call in steps:
            if call.next_token is not None:
                guess = self._draft(call) if alone else []
                entries.append((call, [call.next_token, *guess], True, len(guess)))
                room -= 1 + len(guess)
        for call in steps:
            if call.next_token is None and room > 0:
                chunk = call.pending[:room]
                call.pending = call.pending[len(chunk) :]
                entries.append((call, chunk, not call.pending, 0))
                room -= len(chunk)
        if not entries:
            return
        n = 0
        for call, tokens, logits, drafted in entries:
            start = len(self.cached[call.slot])
            for i, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = start + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = call.slot
                batch.logits[n] = (logits and i >= len(tokens) - 1 - drafted) or start + i == call.probe
                n += 1
        batch.n_tokens = n
        status = lib.llama_decode(self.context, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status}")
        n = 0
        for call, tokens, logits, drafted in entries:
            start = len(self.cached[call.slot])
            if call.probe is not None and start <= call.probe < start + len(tokens):
                self._judge(call, n + call.probe - start)
            self.cached[call.slot] += tokens
            n += len(tokens)
            if drafted:
                self._check(call, n - len(tokens), tokens)
            elif logits:
                self._next(call, n - 1)

    def _draft(self, call: Call) -> list[int]:
        """Tokens to check after ``call``'s next one: what followed its latest words earlier in its context."""
        room = min(
            self.draft_tokens, call.max_tokens - call.written - 1, self.slot_tokens - len(self.cached[call.slot]) - 1
        )
        if room <= 0 or call.next_token is None:
            return []
        return draft([*self.cached[call.slot], call.next_token], room)

    def _check(self, call: Call, first: int, tokens: list[int]) -> None:
        """``tokens`` (the next token, then a draft) were evaluated as rows ``first``...: sample after each in
        turn while the sample is the drafted token that follows; the cache of the drafted tokens after the first
        that differs is dropped (the sample that differed is the next token, evaluated in the next step)."""
        end = len(self.cached[call.slot])
        start = end - len(tokens)
        kept = 0
        for i in range(len(tokens)):
            self._next(call, first + i)
            if i + 1 == len(tokens) or call.next_token != tokens[i + 1]:
                break
            call.next_token = None  # drafted and evaluated already: the sample after it comes from its row
            kept += 1
        call.drafted += len(tokens) - 1
        call.kept += kept
        valid = start + 1 + kept  # the next token and the drafted tokens kept
        if valid < end:
            self._lib.llama_memory_seq_rm(self._memory, call.slot, valid, -1)
            del self.cached[call.slot][valid:]

    def _judge(self, call: Call, index: int) -> None:
        """Send how likely the user's words end at the probe (its logits are row ``index`` of this step)."""
        lib = self._lib
        n_vocab = lib.llama_vocab_n_tokens(self._vocab)
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self.context, index), shape=(n_vocab,))
        call.emit(EndOfTurn(end_of_turn.probability(logits, call.ends)))
        call.probe = None

    def _next(self, call: Call, index: int) -> None:
        lib = self._lib
        call.next_token = None
        token = lib.llama_sampler_sample(call.sampler, self.context, index)
        if lib.llama_vocab_is_eog(self._vocab, token):
            self._end(call, "stop")
            return
        call.written += 1
        assert call.text is not None
        text, stopped = call.text.feed(self._token_bytes(token))
        if text:
            call.emit(Delta(text))
        if stopped:
            self._end(call, "stop", flush=False)
        elif call.written >= call.max_tokens:
            self._end(call, "length")
        else:
            call.next_token = token

    def _token_bytes(self, token: int) -> bytes:
        """The token's text as the model wrote it (a special token's: none)."""
        lib = self._lib
        size = lib.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, False)
        if size < 0:  # a longer piece than the buffer holds: -size is its length
            self._piece = (ctypes.c_char * -size)()
            size = lib.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, False)
        return bytes(self._piece.raw[: max(0, size)])

    def _end(self, call: Call, reason: str, flush: bool = True) -> None:
        if call in self._active:
            self._active.remove(call)
        if flush and call.text is not None and (text := call.text.rest()):
            call.emit(Delta(text))
        if call.sampler is not None:
            self._lib.llama_sampler_free(call.sampler)
            call.sampler = None
        if call.error is None:
            call.emit(Finished(reason, len(call.prompt), call.written, drafted=call.drafted, kept=call.kept))
        call.done.set()

    def _forget(self, slot: int) -> None:
        self._lib.llama_memory_seq_rm(self._memory, slot, -1, -1)
        self.cached[slot] = []
