"""The load harness's report: a summary per ramp step and per sweep, a table, JSON and a plot."""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from rich.console import Console
from rich.table import Table

from bench.common import RESULTS_DIR
from bench.load.client import CallResult, TurnResult
from bench.load.probe import Sample
from voxstack.testing.loadstats import KNEE_FACTOR, Step, first_to_queue, knee, knee_limit, percentile

# What each stage alone took in a turn, from the server's timings (those count from the end of speech).
STAGES = ("asr decode", "llm to first token", "llm first sentence", "tts first chunk")


def stage_seconds(timings: dict[str, float]) -> dict[str, float]:
    asr = timings.get("asr_decode", float("nan"))
    first = timings.get("llm_first_token", float("nan"))
    return {
        "asr decode": asr,
        "llm to first token": first - asr,  # the llm's queue and its prompt
        "llm first sentence": timings.get("first_sentence", float("nan")) - first,
        "tts first chunk": timings.get("tts_first_chunk", float("nan")),
    }


@dataclass
class Summary:
    conversations: int
    seconds: float
    answered: int
    errors: int
    turns_per_second: float
    p50: float
    p95: float
    p99: float
    failures: dict[str, int] = field(default_factory=dict)
    refusal_p95: float = float("nan")  # seconds from asking to a refusal
    stages_p50: dict[str, float] = field(default_factory=dict)
    stages_p95: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # mean cores busy
    rss_mib: dict[str, float] = field(default_factory=dict)  # the most seen

    def line(self) -> str:
        return (
            f"{self.answered} turns ({self.turns_per_second:.2f}/s), first audio p50 {self.p50:.2f} "
            f"p95 {self.p95:.2f} p99 {self.p99:.2f} s, failures {self.failures or 0}, "
            f"cpu {' '.join(f'{k} {v:.2f}' for k, v in self.cpu.items())}"
        )


def step_summary(n: int, results: list[TurnResult], samples: dict[str, list[Sample]], seconds: float) -> Summary:
    answered = [r for r in results if not r.error and r.first_audio is not None]
    firsts = [r.first_audio for r in answered if r.first_audio is not None]
    refused = [r.refused_after for r in results if r.refused_after is not None]
    return Summary(
        conversations=n,
        seconds=round(seconds, 1),
        answered=len(answered),
        errors=len(results) - len(answered),
        turns_per_second=len(answered) / seconds,
        p50=percentile(firsts, 50),
        p95=percentile(firsts, 95),
        p99=percentile(firsts, 99),
        failures=dict(Counter(r.error for r in results if r.error)),
        refusal_p95=percentile(refused, 95),
        stages_p50={s: percentile([stage_seconds(r.timings)[s] for r in answered], 50) for s in STAGES},
        stages_p95={s: percentile([stage_seconds(r.timings)[s] for r in answered], 95) for s in STAGES},
        cpu={k: sum(x.cpu for x in v) / len(v) for k, v in samples.items() if v},
        rss_mib={k: max(x.rss_mib for x in v) for k, v in samples.items() if v},
    )


@dataclass
class SweepSummary:
    route: str
    calls: int
    ok: int
    statuses: dict[str, int]
    p50: float
    p95: float
    calls_per_second: float
    refusal_p95: float

    def line(self) -> str:
        return f"{self.ok}/{self.calls} ok, p50 {self.p50:.2f} p95 {self.p95:.2f} s, {self.calls_per_second:.2f}/s"


def sweep_summary(route: str, results: list[CallResult]) -> SweepSummary:
    ok = [r.seconds for r in results if r.status == 200]
    refused = [r.seconds for r in results if r.status in (429, 503)]
    wall = max((r.at + r.seconds for r in results), default=0.0) - min((r.at for r in results), default=0.0)
    return SweepSummary(
        route=route,
        calls=len(results),
        ok=len(ok),
        statuses=dict(Counter(str(r.status) for r in results)),
        p50=percentile(ok, 50),
        p95=percentile(ok, 95),
        calls_per_second=len(ok) / wall if wall > 0 else 0.0,
        refusal_p95=percentile(refused, 95),
    )


def write(name: str, steps: list[Summary], swept: dict, burst: dict, args: dict) -> None:
    measured = [Step(s.conversations, s.p95, s.answered, s.errors) for s in steps]
    limit = knee_limit(measured)
    good = knee(measured, limit)
    queues = first_to_queue({st: [s.stages_p95.get(st, float("nan")) for s in steps] for st in STAGES})
    sweeps = [sweep_summary(route, results) for route, results in swept.items()]
    overload = {}
    for what, results in burst.items():
        if what.startswith(("WebSocket", "one conversation")):
            # Timed: the refusals as it connected; a turn refused later (the llm busy) is in the outcomes.
            refused = [r.refused_after for r in results if r.at_connect and r.refused_after is not None]
            kinds = Counter(r.error or "answered" for r in results)
        else:
            refused = [r.seconds for r in results if r.status in (429, 503)]
            kinds = Counter(str(r.status) for r in results)
        overload[what] = {
            "outcomes": dict(kinds),
            "refusal_p50": percentile(refused, 50),
            "refusal_max": max(refused, default=float("nan")),
        }
    meta = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "args": args,
    }
    data = {
        "meta": meta,
        "knee": good,
        "limit_p95_seconds": limit,
        "knee_factor": KNEE_FACTOR,
        "first_to_queue": queues,
        "steps": [asdict(s) for s in steps],
        "sweeps": [asdict(s) for s in sweeps],
        "overload": overload,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    _table(steps, sweeps, overload, good, queues, limit)
    if steps:
        from bench.load.plot import plot_ramp

        plot_ramp(steps, good, limit, RESULTS_DIR / f"{name}.png")


def _table(
    steps: list[Summary], sweeps: list[SweepSummary], overload: dict, good: int, queues: str, limit: float
) -> None:
    console = Console(width=180)
    table = Table(
        title=f"ramp: knee = {good} conversations (p95 <= {limit:.2f} s = {KNEE_FACTOR:g} x one alone, no failures); "
        f"first to queue: {queues}"
    )
    for column in (
        "conv",
        "turns/s",
        "p50",
        "p95",
        "p99",
        *(f"{stage} p95" for stage in STAGES),
        "failures",
        "cpu",
        "rss MiB",
    ):
        table.add_column(column)
    for s in steps:
        table.add_row(
            str(s.conversations),
            f"{s.turns_per_second:.2f}",
            f"{s.p50:.2f}",
            f"{s.p95:.2f}",
            f"{s.p99:.2f}",
            *(f"{s.stages_p95[stage]:.2f}" for stage in STAGES),
            ", ".join(f"{k} {v}" for k, v in s.failures.items()) or "-",
            " ".join(f"{k} {v:.2f}" for k, v in s.cpu.items()),
            " ".join(f"{k} {v:.0f}" for k, v in s.rss_mib.items()),
        )
    console.print(table)
    if sweeps:
        table = Table(title="HTTP sweeps")
        for column in ("route", "ok/calls", "statuses", "p50", "p95", "calls/s"):
            table.add_column(column)
        for w in sweeps:
            table.add_row(
                w.route,
                f"{w.ok}/{w.calls}",
                str(w.statuses),
                f"{w.p50:.2f}",
                f"{w.p95:.2f}",
                f"{w.calls_per_second:.2f}",
            )
        console.print(table)
    if overload:
        table = Table(title="overload burst: refusals")
        for column in ("caller", "outcomes", "refusal p50 (s)", "refusal max (s)"):
            table.add_column(column)
        for what, o in overload.items():
            table.add_row(what, str(o["outcomes"]), f"{o['refusal_p50']:.3f}", f"{o['refusal_max']:.3f}")
        console.print(table)
