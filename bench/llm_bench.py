"""llm: time to first token and tokens per second, in-process engine vs through gRPC; a reply checked against
drafts (llm.draft_tokens) vs one written token by token."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path

import grpc

from bench.common import DATA_DIR, Inputs, Report, median, service
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


#: A reply's first phrase is about this many tokens ("The capital of France is").
FIRST_PHRASE_TOKENS = 5


def drafts(models_dir: Path, questions: list[str]) -> dict[int, list[tuple[float, float, str]]]:
    """Each question answered by an engine that checks drafts and by one that does not, in turn: per reply, the
    seconds from its first token to its FIRST_PHRASE_TOKENS-th, the seconds a token after the first, its text."""

    async def run() -> dict[int, list[tuple[float, float, str]]]:
        engines = {}
        for draft_tokens in (0, load_settings().llm.draft_tokens):
            settings = load_settings(models_dir=str(models_dir), llm={"draft_tokens": draft_tokens})
            engines[draft_tokens] = LlamaCppEngine(settings.llm, settings.models_dir)
            await engines[draft_tokens].load()
        replies: dict[int, list[tuple[float, float, str]]] = {k: [] for k in engines}
        for question in questions:
            for draft_tokens, engine in engines.items():
                messages = [
                    {"role": "system", "content": engine.settings.system_prompt},
                    {"role": "user", "content": question},
                ]
                times, text = [], []
                async for event in engine.stream(ChatRequest(messages, Sampling(0.0, 1.0, MAX_TOKENS, seed=1))):
                    if isinstance(event, Delta):
                        times.append(time.perf_counter())
                        text.append(event.text)
                if len(times) < FIRST_PHRASE_TOKENS:  # too short to time: compared, not timed
                    replies[draft_tokens].append((math.nan, math.nan, "".join(text)))
                    continue
                phrase = times[FIRST_PHRASE_TOKENS - 1] - times[0]
                replies[draft_tokens].append((phrase, (times[-1] - times[0]) / (len(times) - 1), "".join(text)))
        for engine in engines.values():
            await engine.close()
        return replies

    return asyncio.run(run())


def run(report: Report, inputs: Inputs) -> None:
    models_dir = inputs.models_dir
    questions = [q["q"] for q in json.loads((DATA_DIR / "questions.json").read_text())["plain"]]
    replies = drafts(models_dir, questions)
    (plain, with_drafts) = (replies[k] for k in sorted(replies))
    same = sum(a[2] == b[2] for a, b in zip(plain, with_drafts, strict=True))
    timed = [i for i, (a, b) in enumerate(zip(plain, with_drafts, strict=True)) if not math.isnan(a[0] + b[0])]
    note = f"quality preset, {len(questions)} questions, greedy, in-process, engines alternating"
    for name, rows in (("written token by token", plain), ("checked against drafts", with_drafts)):
        phrase = median([rows[i][0] for i in timed])
        report.add("llm", f"first token -> token {FIRST_PHRASE_TOKENS}, {name}", phrase, "s", "", note)
        report.add("llm", f"seconds a token, {name}", median([rows[i][1] for i in timed]), "s")
    ratio = median([with_drafts[i][0] for i in timed]) / median([plain[i][0] for i in timed])
    report.add(
        "llm", "first phrase with drafts / without", ratio, "ratio", "< 1", f"the same reply {same} of {len(plain)}"
    )
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
