"""What a second replica of the bottleneck service buys on this machine (``make bench``, section replicas).

The production stack on loopback with 1, then 2 processes of ``STAGE`` (the llm:
it queues first, docs/PERFORMANCE.md), the core balancing per call over a list
of their addresses. Each runs ``CONVERSATIONS`` spoken WebSocket conversations
for ``SECONDS`` (bench/load/client.py): turns/s, end of speech -> first reply
audio p50/p95, and how the calls spread over the replicas (the core's
``voxstack_core_upstream_calls`` by replica). Same run, same machine: report the
ratio. On two cores little gain is expected: the replicas share the same cores.
"""

from __future__ import annotations

import asyncio
import shutil
from contextlib import ExitStack

from bench.common import RESULTS_DIR, Inputs, Report, speech16k
from bench.core_bench import QUESTIONS
from bench.load.client import conversations
from bench.load.report import step_summary
from bench.load.stack import start_stack
from voxstack.testing.replicas import upstream_calls

STAGE = "llm"
CONVERSATIONS = 2
SECONDS = 120.0


def run(report: Report, inputs: Inputs, seconds: float = SECONDS) -> None:
    voice, models_dir = inputs.voice, inputs.models_dir
    questions = [speech16k(voice, q) for q in QUESTIONS]
    env = {"VOXSTACK_MODELS_DIR": str(models_dir), "VOXSTACK_LLM__MAX_TOKENS": "80"}
    measured = {}
    for replicas in (1, 2):
        logs = RESULTS_DIR / f"replicas-{STAGE}-{replicas}-logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        with ExitStack() as stack:
            port, _ = start_stack(stack, env, logs, {STAGE: replicas})
            url, base = f"ws://127.0.0.1:{port}/v1/stream", f"http://127.0.0.1:{port}"
            asyncio.run(conversations(url, questions, 1, 10))  # warm-up
            before = upstream_calls(base, STAGE)
            results = asyncio.run(conversations(url, questions, CONVERSATIONS, seconds))
            after = upstream_calls(base, STAGE)
        summary = step_summary(CONVERSATIONS, results, {}, seconds)
        calls = sorted(after.get(r, 0) - before.get(r, 0) for r in after)
        measured[replicas] = summary
        name = f"{STAGE} x{replicas}, {CONVERSATIONS} conversations"
        report.add("replicas", f"{name}: turns/s", summary.turns_per_second, "1/s")
        report.add("replicas", f"{name}: first audio p50", summary.p50, "s")
        report.add("replicas", f"{name}: first audio p95", summary.p95, "s")
        report.add("replicas", f"{name}: errors", summary.errors, "turns")
        report.add(
            "replicas",
            f"{name}: {STAGE} calls per replica",
            min(calls) / top if calls and (top := max(calls)) else 0.0,
            "min/max",
            note=" / ".join(f"{c:.0f}" for c in calls),
        )
    one, two = measured[1], measured[2]
    report.add("replicas", f"{STAGE} x2 vs x1: turns/s", two.turns_per_second / one.turns_per_second, "x")
    report.add("replicas", f"{STAGE} x2 vs x1: first audio p95", two.p95 / one.p95, "x", note="< 1 is faster")
