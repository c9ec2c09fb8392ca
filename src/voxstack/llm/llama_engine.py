"""llama.cpp through llama-cpp-python: one model, ``parallel`` replies written together.

The chat template comes from the GGUF file. The replies are written in one
context, a token of each per step (llm/batch.py); each call's thread waits
for its reply while the events go to the event loop one by one. Closing the
stream sets a flag the decoding thread checks before every step, so the
reply stops within one token step.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import threading
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from voxstack.codes import ErrorCode
from voxstack.config import LlmSettings, env_name
from voxstack.errors import InvalidInput, StartupError
from voxstack.llm import end_of_turn
from voxstack.llm.batch import Batcher, Call
from voxstack.llm.engine import ChatRequest, Delta, EndOfTurn, Event, Finished, Sampling
from voxstack.llm.prompt_cache import reuse
from voxstack.models import ModelError, require
from voxstack.server.feed import Feed
from voxstack.server.worker import run_in_thread
from voxstack.toolcalls import ToolCall, ToolCallFilter, forced_start, neutral, tool_prompt
from voxstack.toolgrounding import grounded

logger = logging.getLogger(__name__)

# The placeholder of message i in the rendered template (a character no template emits of its own).
_MARK = re.compile("\x1evoxstack-message-(\\d+)\x1e")
#: The context llama-cpp-python's Llama makes of its own: the model's tokenizer and weights are what is used
#: of it; the replies are written in the Batcher's context.
_OWN_CONTEXT = 32


class LlamaCppEngine:
    def __init__(self, settings: LlmSettings, models_dir: Path) -> None:
        self.settings = settings
        self.models_dir = models_dir
        self.llm: Any = None  # llama-cpp-python's Llama: the model's weights and tokenizer
        self.batcher: Batcher | None = None
        # Slots not writing a reply now. A list, not an asyncio.Queue: a warm spare loads the engine on
        # another event loop than the one that serves; the service's worker admits no more calls than
        # there are slots, so a call always finds one.
        self._idle: list[int] = []
        # One waiting thread per call, as many as there are slots.
        self._waiters: ThreadPoolExecutor | None = None
        self._formatter: Any = None
        self._template_has_tools = False  # the model's chat template lists tools itself
        self._ends: tuple[int, ...] = ()  # the tokens that end a message's words (llm/end_of_turn.py)

    def model_path(self) -> Path:
        if self.settings.model is None:
            spec = self.settings.llm_preset.model
            return require(spec, self.models_dir) / spec.files[0].name
        path = self.settings.model.expanduser()
        if not path.is_file():
            raise ModelError(f"llm model {path} does not exist (set VOXSTACK_LLM__MODEL to a GGUF file)")
        return path

    def _load(self) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = self.model_path()
        parallel = self.settings.parallel
        threads = max(1, self.settings.threads or os.cpu_count() or 1)
        try:
            llm = Llama(
                str(path),
                n_ctx=_OWN_CONTEXT,
                n_batch=_OWN_CONTEXT,
                n_ubatch=_OWN_CONTEXT,
                n_threads=threads,
                n_gpu_layers=self.settings.gpu_layers,
                verbose=False,
            )
        except ValueError as exc:  # llama-cpp-python's way of saying the file is not a model
            raise ModelError(f"cannot load llm model {path}: {exc}") from exc
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"llm model {path} has no chat template in its metadata")
        self._template_has_tools = "tools" in template
        eos = llm.token_eos()
        bos = llm.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        self.llm = llm
        self._ends = end_of_turn.end_tokens(llm)
        self.batcher = Batcher(
            llm, parallel, self.settings.context_size, threads, draft_tokens=self.settings.draft_tokens
        )
        self._waiters = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="llm-call")
        logger.info(
            "loaded %s (context %d tokens, %d replies written together, %d threads)",
            path.name,
            self.batcher.slot_tokens,
            parallel,
            threads,
        )

    async def load(self) -> None:
        await run_in_thread(None, self._load)  # the loop's default threads: once, before any call
        assert self.batcher is not None
        self._idle = list(range(self.settings.parallel))
        # Warm-up: one real token through the whole path, in every slot. With the system prompt, which then
        # stays in each slot's cache: a conversation's first turn evaluates only its own message.
        messages = [{"role": "user", "content": "Hi"}]
        if self.settings.system_prompt:
            messages.insert(0, {"role": "system", "content": self.settings.system_prompt})
        chat = ChatRequest(messages, Sampling(0.0, 1.0, 1))
        prompt = len(self.prompt_tokens(chat)[0])
        if prompt >= self.batcher.slot_tokens:
            raise StartupError(
                f"the system prompt is {prompt} tokens with the chat template; the context holds "
                f"{self.batcher.slot_tokens}: shorten {env_name(('llm', 'system_prompt'))} "
                f"or raise {env_name(('llm', 'context_size'))}"
            )

        async for _ in self.stream(chat):  # into the first slot, all being empty
            pass
        tokens, stop = self.prompt_tokens(chat)
        for slot in range(1, self.settings.parallel):  # each shares the first one's cache of the prompt
            call = Call(tokens, chat.sampling, stop, 1, 1.0, slot, lambda _: None, threading.Event())
            await run_in_thread(None, self.batcher.write, call)

    def prompt_tokens(
        self, chat: ChatRequest, llm: Any = None, spans: list[tuple[int, int]] | None = None
    ) -> tuple[list[int], list[str]]:
        """The prompt as tokens, and the template's own stop strings; where each message's text lies in the
        tokens goes into ``spans`` when given (a system message the tools add among them).

        Only the chat template's own markers are special tokens: the messages'
        text is tokenized as plain text, so a user who types ``<|im_end|>`` gets
        those characters, not the end of their turn (prompt injection through
        the template). The template is rendered with a placeholder for each
        message, and the pieces are tokenized apart.
        """
        llm = llm if llm is not None else self.llm
        messages = [dict(m) for m in chat.messages]
        tools = chat.tools if chat.tool_choice != "none" else ()
        listed = None
        if tools:
            # When to call: in the system message. A template that knows no tools gets what it would
            # have listed there too.
            added = [self.settings.tool_instructions]
            if self._template_has_tools:
                listed = [t.as_openai() for t in tools]
            else:
                added.append(tool_prompt(tools))
            added = [a for a in added if a]
            first = messages[0] if messages[0]["role"] == "system" else None
            if first is None and added:
                messages.insert(0, {"role": "system", "content": "\n\n".join(added)})
            elif first is not None:
                first["content"] = "\n\n".join([first["content"], *added] if first["content"] else added)
        marks = [f"\x1evoxstack-message-{i}\x1e" for i in range(len(messages))]
        # The calls' names and arguments are rendered by the template: markers in them are broken up.
        masked = [{**neutral(m), "content": mark} for m, mark in zip(messages, marks, strict=True)]
        result = self._formatter(messages=masked, tools=listed)
        tokens: list[int] = []
        # split() alternates: template text, a message's index, template text, ...
        for n, piece in enumerate(_MARK.split(result.prompt)):
            text, special = (messages[int(piece)]["content"], False) if n % 2 else (piece, True)
            start = len(tokens)
            if text:
                add_bos = not tokens and not result.added_special
                tokens += llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)
            if n % 2 and spans is not None:
                spans.append((start, len(tokens)))
        forced = forced_start(chat.tool_choice) if tools else ""
        if forced:  # the reply begins with a call: the model writes the rest of it
            tokens += llm.tokenize(forced.encode("utf-8"), add_bos=False, special=self._template_has_tools)
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return tokens, stop

    def _generate(
        self,
        cancel: threading.Event,
        slot: int,
        chat: ChatRequest,
        prompt: tuple[list[int], list[str]],
        emit: Callable[[Event], None],
        probe: int | None = None,
    ) -> None:
        tokens, template_stop = prompt
        assert self.batcher is not None
        room = self.batcher.slot_tokens - len(tokens)
        if room < 1:
            raise InvalidInput(
                f"the prompt is {len(tokens)} tokens; the context holds {self.batcher.slot_tokens}: "
                "shorten the messages",
                reason=ErrorCode.PROMPT_TOO_LONG,
            )
        s = chat.sampling
        call = Call(
            prompt=tokens,
            sampling=s,
            stop=[*template_stop, *s.stop],
            max_tokens=min(s.max_tokens, room),
            repeat_penalty=self.settings.repeat_penalty,
            slot=slot,
            emit=emit,
            cancel=cancel,
            probe=probe,
            ends=self._ends,
        )
        self.batcher.write(call)

    async def stream(self, chat: ChatRequest) -> AsyncGenerator[Event, None]:
        """The reply's deltas and its end. A reply offered tools that ends with neither words nor a call it
        may make (every call ungrounded, see ``toolgrounding``, or of a function not offered) is written
        again without tools, so that it ends in words."""
        dropped: Finished | None = None
        spoke = False
        async with contextlib.aclosing(self._stream(chat)) as first:  # its context is free again after it
            async for event in first:
                if isinstance(event, EndOfTurn):
                    yield event
                    continue
                if isinstance(event, Delta):
                    spoke = spoke or bool(event.text.strip())
                    yield event
                    continue
                kept = tuple(c for c in event.tool_calls if self._grounded(c, chat))
                if kept or not event.tool_calls:
                    ended = event if kept == event.tool_calls else replace(event, tool_calls=kept)
                else:  # every call dropped: the reply is what it said, if anything
                    ended = replace(event, reason="stop", tool_calls=())
                if kept or spoke or chat.tool_choice == "none" or not chat.tools:
                    yield ended
                else:
                    dropped = event
        if dropped is None:
            return
        logger.info("no call the reply may make, answered in words: %s", dropped.tool_calls or "(calls of no tool)")
        async for again in self._stream(replace(chat, tool_choice="none", end_of_turn=False)):
            if isinstance(again, Finished):
                again = replace(
                    again,
                    prompt_tokens=again.prompt_tokens + dropped.prompt_tokens,
                    completion_tokens=again.completion_tokens + dropped.completion_tokens,
                )
            yield again

    def _grounded(self, call: ToolCall, chat: ChatRequest) -> bool:
        if not (self.settings.tool_call_grounding and chat.tool_choice in ("", "auto")):
            return True  # a call the request required, or the check is off
        tool = next((t for t in chat.tools if t.name == call.name), None)
        said = [str(m.get("content") or "") for m in chat.messages]
        return grounded(call.arguments, tool, said)

    async def _stream(self, chat: ChatRequest) -> AsyncGenerator[Event, None]:
        if not self._idle or self.batcher is None:
            raise RuntimeError("no idle llm slot: more calls than `parallel` were let in")
        spans: list[tuple[int, int]] = []
        prompt = self.prompt_tokens(chat, spans=spans)
        probe = self._probe(chat, prompt[0], spans) if chat.end_of_turn else None
        cached = self.batcher.cached
        slot = max(self._idle, key=lambda n: reuse(cached[n], prompt[0]))
        self._idle.remove(slot)
        feed: Feed[Event] = Feed()
        cancel = threading.Event()

        async def generate() -> None:
            await run_in_thread(
                self._waiters,
                self._generate,
                cancel,
                slot,
                chat,
                prompt,
                feed.put_threadsafe,
                probe,
                cancel=cancel,
            )

        tools = chat.tools if chat.tool_choice != "none" else ()
        calls = ToolCallFilter(tools, forced_start(chat.tool_choice)) if tools else None
        try:
            async with feed.running(generate):
                async for event in feed:
                    if calls is None or isinstance(event, EndOfTurn):
                        yield event
                    elif isinstance(event, Delta):
                        if text := calls.feed(event.text):
                            yield Delta(text)
                    else:
                        if rest := calls.finish():
                            yield Delta(rest)
                        if calls.bad:
                            logger.info("the model wrote %d call(s) of no offered tool: %s", len(calls.bad), calls.bad)
                        found = tuple(calls.calls)
                        reason = "tool_calls" if found else event.reason
                        yield dataclasses.replace(event, reason=reason, tool_calls=found)
        finally:
            self._idle.append(slot)

    def _probe(self, chat: ChatRequest, tokens: list[int], spans: list[tuple[int, int]]) -> int | None:
        """Where the last user message's words end in ``tokens``: the position whose logits say whether the
        turn ends there (None when the last message is not the user's, or has no words)."""
        last = chat.messages[-1]
        if last.get("role") != "user" or not spans:
            return None
        said = end_of_turn.words(str(last.get("content") or ""))
        head = self.llm.tokenize(said.encode("utf-8"), add_bos=False, special=False) if said else []
        return end_of_turn.probe_index(tokens, spans[-1], head)

    async def close(self) -> None:
        if self.batcher is not None:
            await asyncio.to_thread(self.batcher.close)  # ends the replies still being written
        if self._waiters is not None:
            self._waiters.shutdown(wait=True, cancel_futures=True)
