"""llm: time to first token and tokens per second, in-process engine vs through gRPC."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc

from bench.common import Inputs, Report, median, service
from voxstack.config import load_settings
from voxstack.llm.engine import ChatRequest, Delta, Finished, Sampling
from voxstack.llm.llama_engine import LlamaCppEngine
from voxstack.v1 import llm_pb2, llm_pb2_grpc

PROMPTS = [
    "What is the capital of France?",
    "Give me a tip for sleeping better.",
    "How far away is the moon?",
    "What should I cook for dinner tonight?",
    "Explain what a rainbow is.",
    "Tell me a fun fact about cats.",
]
MAX_TOKENS = 64
ROUNDS = 2


def in_process(models_dir: Path) -> tuple[list[float], list[float]]:
    settings = load_settings(models_dir=str(models_dir))

    async def run() -> tuple[list[float], list[float]]:
        engine = LlamaCppEngine(settings.llm, settings.models_dir)
        await engine.load()
        ttfts, rates = [], []
        for _ in range(ROUNDS):
            for prompt in PROMPTS:
                messages = [
                    {"role": "system", "content": settings.llm.system_prompt},
                    {"role": "user", "content": prompt},
                ]
                conversation = ChatRequest(messages, Sampling(0.0, 1.0, MAX_TOKENS, seed=1))
                started = time.perf_counter()
                first = 0.0
                async for event in engine.stream(conversation):
                    if isinstance(event, Delta):
                        first = first or time.perf_counter() - started
                    elif isinstance(event, Finished):
                        tokens = event.completion_tokens
                ttfts.append(first)
                rates.append(max(tokens - 1, 1) / (time.perf_counter() - started - first))
        await engine.close()
        return ttfts, rates

    return asyncio.run(run())


def through_grpc(address: str) -> tuple[list[float], list[float]]:
    ttfts, rates = [], []
    with grpc.insecure_channel(address) as channel:
        stub = llm_pb2_grpc.LlmStub(channel)
        for _ in range(ROUNDS):
            for prompt in PROMPTS:
                request = llm_pb2.GenerateRequest(
                    messages=[llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content=prompt)],
                    sampling=llm_pb2.SamplingParams(temperature=0, max_tokens=MAX_TOKENS, seed=1),
                )
                started = time.perf_counter()
                first = 0.0
                for reply in stub.Generate(request, timeout=60):
                    if reply.WhichOneof("event") == "delta":
                        first = first or time.perf_counter() - started
                    else:
                        tokens = reply.done.usage.completion_tokens
                ttfts.append(first)
                rates.append(max(tokens - 1, 1) / (time.perf_counter() - started - first))
    return ttfts, rates


def run(report: Report, inputs: Inputs) -> None:
    models_dir = inputs.models_dir
    local_ttft, local_rate = in_process(models_dir)
    with service("llm", {"VOXSTACK_MODELS_DIR": str(models_dir)}) as address:
        remote_ttft, remote_rate = through_grpc(address)
    n = len(PROMPTS) * ROUNDS
    report.add("llm", "time to first token, in-process engine", median(local_ttft), "s", "", f"median of {n}")
    report.add("llm", "time to first token, through gRPC", median(remote_ttft), "s", "", f"median of {n}")
    overhead = (median(remote_ttft) - median(local_ttft)) * 1000
    report.add("llm", "gRPC overhead on time to first token", overhead, "ms", "<= 5", "difference of medians")
    report.add("llm", "tokens per second, in-process engine", median(local_rate), "tok/s", "", f"median of {n}")
    report.add("llm", "tokens per second, through gRPC", median(remote_rate), "tok/s", "", f"median of {n}")
    report.add("llm", "throughput ratio gRPC / in-process", median(remote_rate) / median(local_rate), "ratio")
