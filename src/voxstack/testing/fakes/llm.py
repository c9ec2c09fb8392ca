"""A scripted llm: the real Llm proto, replies from the script, streamed token by token.

The reply to a request is the first scripted entry whose ``match`` (a regular
expression) is found in the last user message and whose ``system`` in the
system prompt (the request's, else ``llm.system_prompt``), else the ``default`` entry,
else an echo (``You said: ...``), so a test can tell which turn a reply
answers. ``tokens`` (or ``text`` cut into words) are sent after
``first_token_delay``, then every ``token_delay`` seconds; ``max_tokens``
from the request cuts the reply with finish reason LENGTH. The slots and
queue are the real service's ``Worker``, so a full queue is refused as the
real llm refuses it. Every request is appended to the calls file, for tests
that check what the core sent.

Function calling: an entry's ``tool_calls`` (``[{"name", "arguments"}]``) is
the reply instead of text (finish reason TOOL_CALLS); an entry with
``tool_result`` (a regular expression) matches only a request whose last
message is a tool's result that it is found in.

A request that asks for ``end_of_turn`` gets the entry's ``end_of_turn``
(how likely the words are a whole turn; 1.0 when the entry has none) first.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from voxstack.config import Settings
from voxstack.metrics.catalog import LlmMetrics
from voxstack.server.worker import Worker
from voxstack.testing.fakes.script import die, read_section, record_call, scripted_error
from voxstack.v1 import common_pb2, llm_pb2, llm_pb2_grpc

ROLES = {
    llm_pb2.ROLE_SYSTEM: "system",
    llm_pb2.ROLE_USER: "user",
    llm_pb2.ROLE_ASSISTANT: "assistant",
    llm_pb2.ROLE_TOOL: "tool",
}


def choose(section: dict[str, Any], last_user: str, system: str = "", tool_result: str | None = None) -> dict[str, Any]:
    for reply in section.get("replies") or []:
        wanted = reply.get("tool_result")
        if (wanted is None) != (tool_result is None):
            continue
        if wanted is not None and not re.search(str(wanted), tool_result or "", re.IGNORECASE):
            continue
        if re.search(str(reply.get("match", "")), last_user, re.IGNORECASE) and re.search(
            str(reply.get("system", "")), system, re.IGNORECASE
        ):
            return dict(reply)
    default = section.get("default")
    return dict(default) if default else {"text": f"You said: {last_user}"}


def tokens_of(reply: dict[str, Any]) -> list[str]:
    if "tokens" in reply:
        return [str(t) for t in reply["tokens"]]
    return re.findall(r"\S+\s*", str(reply.get("text", "")))


class FakeLlmServicer(llm_pb2_grpc.LlmServicer):
    def __init__(self, service: FakeLlmService) -> None:
        self.service = service

    async def Generate(
        self, request: llm_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[llm_pb2.GenerateResponse]:
        received = time.perf_counter()
        messages = [{"role": ROLES.get(m.role, "user"), "content": m.content} for m in request.messages]
        tools = [t.name for t in request.tools]
        record_call(
            "llm",
            "Generate",
            {"messages": messages, "max_tokens": request.sampling.max_tokens, "tools": tools,
             "tool_choice": request.tool_choice, "end_of_turn": request.end_of_turn},
        )  # fmt: skip
        last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        # The system prompt the real llm would apply: the request's, else this service's setting.
        system = next((m["content"] for m in messages if m["role"] == "system"), self.service.system_prompt)
        result = messages[-1]["content"] if messages and messages[-1]["role"] == "tool" else None
        reply = choose(read_section("llm"), last_user, system, result)
        async with self.service.worker.slot() as queued:
            await asyncio.sleep(float(reply.get("first_token_delay", 0.0)))
            error = scripted_error(reply.get("error"))
            if error is not None:
                raise error
            calls = [
                llm_pb2.ToolCall(id=f"call_fake_{i}", name=c["name"], arguments=json.dumps(c.get("arguments", {})))
                for i, c in enumerate(reply.get("tool_calls") or ())
            ]
            tokens = [] if calls else tokens_of(reply)
            limit = request.sampling.max_tokens if request.sampling.HasField("max_tokens") else 0
            finish = llm_pb2.FINISH_REASON_TOOL_CALLS if calls else llm_pb2.FINISH_REASON_STOP
            if limit and len(tokens) > limit:
                tokens, finish = tokens[:limit], llm_pb2.FINISH_REASON_LENGTH
            if request.end_of_turn:
                said = float(reply.get("end_of_turn", 1.0))
                yield llm_pb2.GenerateResponse(end_of_turn=llm_pb2.EndOfTurn(probability=said))
            first = 0.0
            for i, token in enumerate(tokens):
                if i:
                    await asyncio.sleep(float(reply.get("token_delay", 0.0)))
                if reply.get("die_after_tokens") == i:
                    die()
                if not first:
                    first = time.perf_counter() - received
                yield llm_pb2.GenerateResponse(delta=token)
            now = time.perf_counter()
            prompt = sum(len(m["content"].split()) for m in messages)
            yield llm_pb2.GenerateResponse(
                done=llm_pb2.GenerateDone(
                    finish_reason=finish,
                    usage=llm_pb2.TokenUsage(
                        prompt_tokens=prompt, completion_tokens=len(tokens), total_tokens=prompt + len(tokens)
                    ),
                    text="".join(tokens),
                    tool_calls=calls,
                    time_to_first_token_seconds=first,
                    timings=common_pb2.Timings(
                        queue_seconds=queued,
                        processing_seconds=now - received,
                        total_seconds=now - received,
                        first_result_seconds=first,
                    ),
                )
            )


class FakeLlmService:
    """The scripted llm behind the shared gRPC host."""

    name = "llm"
    grpc_names = ("voxstack.v1.Llm",)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.system_prompt = settings.llm.system_prompt
        self.metrics = LlmMetrics()
        self.worker = Worker("llm", settings.llm.concurrency, settings.llm.max_queue, self.metrics)

    def register(self, server: grpc.aio.Server) -> None:
        llm_pb2_grpc.add_LlmServicer_to_server(FakeLlmServicer(self), server)

    async def start(self) -> None:
        await asyncio.sleep(float(read_section("llm").get("load_seconds", 0.0)))

    async def close(self) -> None:
        return None


def create(settings: Settings) -> FakeLlmService:
    """The factory the fake is served by (``FACTORIES["llm"]``)."""
    return FakeLlmService(settings)
