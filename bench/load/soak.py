"""``make load`` soak mode: steady conversations for many minutes; nothing may grow after the warm-up.

Every ``EVERY`` seconds: RSS, open files and threads of each service process,
and from the core's /metrics its sessions, open WebSockets and asyncio tasks.
Each series is judged by ``voxstack.testing.loadstats.growth`` (median of the
first fifth after the warm-up against the last fifth); the verdicts, the
series (JSON) and their curves (PNG) go to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from bench.common import RESULTS_DIR
from bench.load.client import conversations
from bench.load.plot import plot_soak
from bench.load.probe import Probe
from bench.load.report import step_summary
from voxstack.testing.loadstats import growth

logger = logging.getLogger("load")
EVERY = 10.0  # seconds between samples
WARMUP_MINUTES = 3.0
CORE_GAUGES = {
    "voxstack_core_sessions": "sessions",
    "voxstack_core_websockets_open": "websockets",
    "voxstack_core_tasks": "tasks",
}
# What each measure may move by between the start and the end without counting as growth.
TOLERANCE = {
    "rss_mib": (0.05, 20.0),
    "fds": (0.0, 8.0),
    "threads": (0.0, 4.0),
    "sessions": (0.0, 2.0),
    "websockets": (0.0, 1.0),
    "tasks": (0.1, 10.0),
}


async def core_gauges(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name in CORE_GAUGES and family.samples:
            found[CORE_GAUGES[family.name]] = family.samples[0].value
    return found


async def _soak(
    url: str, base: str, questions: list[np.ndarray], pids: dict[str, int], args: argparse.Namespace
) -> int:
    probe = Probe(pids, every=EVERY)
    sampling = asyncio.create_task(probe.run())
    gauges: list[tuple[float, dict[str, float]]] = []
    started = time.perf_counter()

    async def scrape() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            while True:
                await asyncio.sleep(EVERY)
                try:
                    gauges.append((time.perf_counter(), await core_gauges(client)))
                except httpx.HTTPError as exc:
                    logger.warning("metrics not scraped: %s", exc)

    scraping = asyncio.create_task(scrape())
    results = await conversations(url, questions, args.conversations, args.soak * 60)
    sampling.cancel()
    scraping.cancel()
    ended = time.perf_counter()
    summary = step_summary(args.conversations, results, probe.between(started, ended), ended - started)
    logger.warning("soak: %s", summary.line())

    warmup = int(WARMUP_MINUTES * 60 / EVERY)
    series: dict[str, dict[str, list[tuple[float, float]]]] = {m: {} for m in ("rss_mib", "fds", "threads")}
    for name, samples in probe.samples.items():
        for measure in series:
            series[measure][name] = [((s.at - started) / 60, float(getattr(s, measure))) for s in samples]
    series["core gauges"] = {
        label: [((at - started) / 60, values[label]) for at, values in gauges if label in values]
        for label in CORE_GAUGES.values()
    }
    verdicts = {}
    for measure, lines in series.items():
        for name, points in lines.items():
            relative, absolute = TOLERANCE[name if measure == "core gauges" else measure]
            verdict = growth([v for _, v in points], warmup=warmup, relative=relative, absolute=absolute)
            verdicts[f"{measure} {name}"] = verdict.__dict__
            logger.warning(
                "%-22s %-10s start %8.1f end %8.1f (allowed +%.1f): %s",
                measure,
                name,
                verdict.start,
                verdict.end,
                verdict.allowed,
                "GREW" if verdict.grew else "flat",
            )
    grew = [k for k, v in verdicts.items() if v["grew"]]
    data = {
        "meta": {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "args": vars(args)},
        "summary": summary.__dict__,
        "verdicts": verdicts,
        "grew": grew,
        "series": series,
    }
    (RESULTS_DIR / f"{args.name}-soak.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    plot_soak(series, RESULTS_DIR / f"{args.name}-soak.png")
    logger.warning("soak: %s", f"grew: {', '.join(grew)}" if grew else "no growth after the warm-up")
    return 1 if grew else 0


def soak(url: str, base: str, questions: list[np.ndarray], pids: dict[str, int], args: argparse.Namespace) -> int:
    return asyncio.run(_soak(url, base, questions, pids, args))
