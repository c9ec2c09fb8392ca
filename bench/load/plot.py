"""The load harness's pictures: the ramp (latency, throughput, CPU per service) and a soak's curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator


def plot_ramp(steps: list, knee: int, limit: float, path: Path) -> None:
    n = [s.conversations for s in steps]
    figure, (latency, throughput, cpu) = plt.subplots(1, 3, figsize=(15, 4.2))
    latency.plot(n, [s.p50 for s in steps], "o-", label="p50")
    latency.plot(n, [s.p95 for s in steps], "o-", label="p95")
    latency.plot(n, [s.p99 for s in steps], "o:", label="p99")
    latency.axhline(limit, color="grey", linestyle="--", label=f"p95 limit {limit:g} s")
    if knee:
        latency.axvline(knee, color="green", linestyle=":", label=f"knee {knee}")
    latency.set(xlabel="conversations at once", ylabel="end of speech -> first audio (s)", title="latency")
    latency.legend()
    throughput.plot(n, [s.turns_per_second for s in steps], "o-", label="answered")
    throughput.plot(n, [s.errors / s.seconds for s in steps], "x-", label="failed or refused")
    throughput.set(xlabel="conversations at once", ylabel="turns / s", title="throughput")
    throughput.legend()
    for name in steps[0].cpu:
        cpu.plot(n, [s.cpu.get(name, 0.0) for s in steps], "o-", label=name)
    cpu.set(xlabel="conversations at once", ylabel="cores busy (mean)", title="CPU per service")
    cpu.legend()
    for axis in (latency, throughput, cpu):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole conversations
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_soak(series: dict[str, dict[str, list[tuple[float, float]]]], path: Path) -> None:
    """``series``: measure -> process -> (minutes, value) points, one panel per measure."""
    figure, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 4))
    for axis, (measure, lines) in zip(axes, series.items(), strict=True):
        for name, points in lines.items():
            axis.plot([p[0] for p in points], [p[1] for p in points], label=name)
        axis.set(xlabel="minutes", title=measure)
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
