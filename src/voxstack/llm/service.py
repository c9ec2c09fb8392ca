"""The llm gRPC servicer and the Service the shared host runs."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from voxstack.config import Settings
from voxstack.llm.engine import ChatRequest, Delta, EndOfTurn, Finished, LlmEngine, chat_request_from
from voxstack.metrics.catalog import LlmMetrics
from voxstack.server.worker import Worker
from voxstack.tracing import tracer
from voxstack.v1 import common_pb2, llm_pb2, llm_pb2_grpc

if TYPE_CHECKING:  # llama.cpp's engine is imported only when it is the one configured
    from voxstack.llm.prepared import PreparedLlm

logger = logging.getLogger(__name__)

FINISH = {
    "stop": llm_pb2.FINISH_REASON_STOP,
    "length": llm_pb2.FINISH_REASON_LENGTH,
    "cancelled": llm_pb2.FINISH_REASON_CANCELLED,
    "tool_calls": llm_pb2.FINISH_REASON_TOOL_CALLS,
}


class LlmServicer(llm_pb2_grpc.LlmServicer):
    def __init__(self, service: LlmService) -> None:
        self.service = service

    async def Generate(
        self, request: llm_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[llm_pb2.GenerateResponse]:
        received = time.perf_counter()
        chat: ChatRequest = chat_request_from(request, self.service.settings.llm)
        metrics = self.service.metrics
        async with self.service.worker.slot() as queued:
            started = time.perf_counter()
            first = 0.0
            last = started
            text: list[str] = []
            finished = False
            span = tracer().start_span("llm generate")  # ended below: a generator must not hold a current span
            # Closed before the slot is released, even when the caller goes away mid-reply: the engine's
            # stream gives its slot back (and ends its reply) in its own cleanup.
            try:
                async with contextlib.aclosing(self.service.engine.stream(chat)) as events:
                    async for event in events:
                        if isinstance(event, EndOfTurn):
                            metrics.end_of_turn_probability.observe(event.probability)
                            yield llm_pb2.GenerateResponse(end_of_turn=llm_pb2.EndOfTurn(probability=event.probability))
                            continue
                        if isinstance(event, Delta):
                            now = time.perf_counter()
                            if first:
                                metrics.inter_token_seconds.observe(now - last)
                            else:
                                first = now - started
                                metrics.first_token_seconds.observe(first)
                            last = now
                            text.append(event.text)
                            yield llm_pb2.GenerateResponse(delta=event.text)
                            continue
                        finished = True
                        metrics.prompt_tokens.inc(event.prompt_tokens)
                        metrics.generated_tokens.inc(event.completion_tokens)
                        metrics.draft_tokens.labels("kept").inc(event.kept)
                        metrics.draft_tokens.labels("dropped").inc(event.drafted - event.kept)
                        metrics.replies.labels(event.reason if event.reason in FINISH else "stop").inc()
                        yield self._done(event, text, first, queued, started, received)
            finally:
                span.end()
                if not finished:  # the caller went away, or the engine failed, mid-reply
                    metrics.replies.labels("cancelled").inc()

    @staticmethod
    def _done(
        event: Finished, text: list[str], first: float, queued: float, started: float, received: float
    ) -> llm_pb2.GenerateResponse:
        now = time.perf_counter()
        return llm_pb2.GenerateResponse(
            done=llm_pb2.GenerateDone(
                finish_reason=FINISH.get(event.reason, llm_pb2.FINISH_REASON_STOP),
                usage=llm_pb2.TokenUsage(
                    prompt_tokens=event.prompt_tokens,
                    completion_tokens=event.completion_tokens,
                    total_tokens=event.prompt_tokens + event.completion_tokens,
                ),
                text="".join(text),
                tool_calls=[llm_pb2.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in event.tool_calls],
                time_to_first_token_seconds=first,
                timings=common_pb2.Timings(
                    queue_seconds=queued,
                    processing_seconds=now - started,
                    total_seconds=now - received,
                    first_result_seconds=(started - received) + first if first else 0.0,
                ),
            )
        )


class LlmService:
    """An llm engine (llama.cpp or an OpenAI-compatible upstream) behind the shared gRPC host."""

    name = "llm"
    grpc_names = ("voxstack.v1.Llm",)

    def __init__(self, settings: Settings, prepared: PreparedLlm | None = None) -> None:
        self.settings = settings
        llm = settings.llm
        self.engine: LlmEngine
        # A warm spare's engine, if it was loaded from these settings (else this start loads its own).
        kept = prepared.serves(llm) if prepared is not None else None
        self.prepared = prepared if kept is not None else None
        if kept is not None:
            self.engine = kept
        elif llm.engine == "openai":
            from voxstack.llm.openai_engine import OpenAIEngine

            self.engine = OpenAIEngine(llm)
        else:
            from voxstack.llm.llama_engine import LlamaCppEngine

            self.engine = LlamaCppEngine(llm, settings.models_dir)
        # Only its queue limit: the engines run their own threads or calls.
        self.metrics = LlmMetrics()
        self.worker = Worker("llm", llm.concurrency, llm.max_queue, self.metrics)

    def register(self, server: grpc.aio.Server) -> None:
        llm_pb2_grpc.add_LlmServicer_to_server(LlmServicer(self), server)

    async def start(self) -> None:
        if self.prepared is not None:
            logger.info("llm engine kept from the warm spare: no model load")
            return
        await self.engine.load()

    async def close(self) -> None:
        await self.engine.close()


def create(settings: Settings, prepared: PreparedLlm | None = None) -> LlmService:
    return LlmService(settings, prepared)
