"""Telemetry overhead: turns with metrics and tracing on against the same stack with them off, interleaved.

Two stacks run side by side, one plain (no metrics ports, the core's /metrics
off, no OTEL_*), one instrumented (metrics ports scraped every few seconds,
every span exported over OTLP to a receiver in this process). Turns alternate
between them so that drift on a noisy machine falls on both alike; the figures
are medians and the ratio instrumented / plain.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.common import Inputs, Report, median, speech16k, whole_stack
from bench.core_bench import QUESTIONS, ws_turn
from voxstack.registry import MODEL_SERVICES
from voxstack.testing.otlp import exporting_env, receiving
from voxstack.testing.processes import free_port

ROUNDS = 3
# Prometheus scrapes every 15 s by default; this is three times as often. Spans go out in the SDK's
# default batches (every 5 s), not the tests' prompt ones.
SCRAPE_SECONDS = 5.0


def stack(exits: ExitStack, models_dir: Path, extra: dict[str, str], metrics: bool) -> tuple[int, list[str]]:
    """The four services with ``extra`` settings; the core's port and the metrics URLs to scrape."""
    env = {"VOXSTACK_LLM__MAX_TOKENS": "80", **extra}
    scrape = []
    if metrics:
        for name in MODEL_SERVICES:
            port = free_port()
            env[f"VOXSTACK_{name.upper()}__METRICS_PORT"] = str(port)
            scrape.append(f"http://127.0.0.1:{port}/metrics")
    else:
        env["VOXSTACK_CORE__METRICS"] = "false"
    core_port = whole_stack(exits, models_dir, env)
    if metrics:
        scrape.append(f"http://127.0.0.1:{core_port}/metrics")
    return core_port, scrape


def scraper(urls: list[str], stop: threading.Event) -> None:
    with httpx.Client(timeout=5) as client:
        while not stop.wait(SCRAPE_SECONDS):
            for url in urls:
                client.get(url).raise_for_status()


def run(report: Report, inputs: Inputs) -> None:
    voice, models_dir = inputs.voice, inputs.models_dir
    stop = threading.Event()
    with ExitStack() as exits, receiving() as (receiver, otlp_port):
        plain, _ = stack(exits, models_dir, {}, metrics=False)
        otel = {k: v for k, v in exporting_env(otlp_port).items() if k != "OTEL_BSP_SCHEDULE_DELAY"}
        instrumented, urls = stack(exits, models_dir, otel, metrics=True)
        scraping = threading.Thread(target=scraper, args=(urls, stop), daemon=True)
        scraping.start()
        questions = [speech16k(voice, q) for q in QUESTIONS]
        ws_turn(plain, questions[0])  # warm-up, both
        ws_turn(instrumented, questions[0])
        turns: dict[str, list[dict[str, float]]] = {"plain": [], "instrumented": []}
        for n in range(ROUNDS):
            for i, q in enumerate(questions):
                order = [("plain", plain), ("instrumented", instrumented)]
                if (n + i) % 2:
                    order.reverse()  # neither always goes first
                for name, port in order:
                    turns[name].append(ws_turn(port, q))
        stop.set()
        scraping.join()
        spans = len(receiver.spans)
    note = f"median of {len(turns['plain'])} interleaved turns each; {spans} spans exported"
    for key, label in (("first_audio", "end of speech to first audio byte"), ("stage llm_first_token", "llm TTFT")):
        off = median([t[key] for t in turns["plain"]])
        on = median([t[key] for t in turns["instrumented"]])
        report.add("telemetry", f"{label}, metrics+tracing off", off, "s", "", note)
        report.add("telemetry", f"{label}, metrics+tracing on", on, "s", "", note)
        report.add("telemetry", f"{label}: on / off", on / off, "ratio", "<= 1.02", "")
