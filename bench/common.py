"""Shared helpers for the benchmarks: servers as subprocesses, statistics, the table and JSON."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from voxstack.audio import resample
from voxstack.registry import ALL_SERVICES
from voxstack.testing.processes import free_port, free_ports, served

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: The benches' own inputs: questions with their accepted answers, held-out questions, tool requests.
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass
class Inputs:
    """What every bench may take: the models folder, and the piper voice that makes its test speech."""

    models_dir: Path

    @cached_property
    def voice(self) -> Any:
        from piper import PiperVoice

        from voxstack.models import VOICE

        return PiperVoice.load(str(VOICE.path(self.models_dir) / "en_US-joe-medium.onnx"))


def speech16k(voice: Any, text: str, *, trim: bool = True) -> np.ndarray:
    """``text`` said by the piper ``voice`` at 16 kHz; trimmed to the speech unless told not to."""
    audio = resample(np.concatenate([c.audio_float_array for c in voice.synthesize(text)]), 22050, 16000)
    return trimmed(audio) if trim else audio


def trimmed(audio: np.ndarray) -> np.ndarray:
    """``audio`` from its first audible sample to its last."""
    voiced = np.nonzero(np.abs(audio) > 1e-3)[0]
    return audio[voiced[0] : voiced[-1] + 1]


def realtime_chunks(
    pcm: bytes, speech_end: int, marks: dict[str, float], chunk: int = 320, rate: int = 16000
) -> Iterator[bytes]:
    """PCM16 ``pcm`` at ``rate`` in ``chunk``-sample pieces, each when its audio would have been spoken.

    ``marks["speech_end"]`` is the time the piece holding sample ``speech_end`` was sent.
    """
    start = time.perf_counter()
    for n, i in enumerate(range(0, len(pcm) // 2, chunk)):
        delay = start + n * chunk / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield pcm[2 * i : 2 * (i + chunk)]
        if i <= speech_end <= i + chunk:
            marks["speech_end"] = time.perf_counter()


@contextmanager
def service(name: str, env: dict[str, str] | None = None, log: Path | None = None, port: int = 0) -> Iterator[str]:
    """Run service ``name`` in prod mode (on ``port``, or a free one) until the block ends; yields its address."""
    with served(name, port=port or None, mode="prod", env=env, log=log) as process:
        yield process.address


def whole_stack(exits: ExitStack, models_dir: Path, env: dict[str, str] | None = None) -> int:
    """asr, llm, tts and core in prod mode on free ports, until ``exits`` closes; the core's port."""
    return stack_ports(exits, models_dir, env)["core"]


def stack_ports(
    exits: ExitStack,
    models_dir: Path,
    env: dict[str, str] | None = None,
    variants: dict[str, dict[str, str]] | None = None,
    *,
    share: bool = True,
) -> dict[str, int]:
    """``whole_stack``, and beside it one for each of ``variants`` (name -> its settings), to compare settings in
    the same run: a core of its own on the same asr, llm and tts when only core settings change (and ``share``),
    else a whole stack of its own. Each one's core port by name (the first's as "core")."""
    ports = dict(zip(ALL_SERVICES, free_ports(len(ALL_SERVICES)), strict=True))
    full = {"VOXSTACK_MODELS_DIR": str(models_dir), **(env or {})}
    full |= {f"VOXSTACK_{n.upper()}__PORT": str(p) for n, p in ports.items()}
    for name, port in ports.items():
        exits.enter_context(service(name, full, port=port))
    for variant, settings in (variants or {}).items():
        if share and all(key.startswith("VOXSTACK_CORE__") for key in settings):
            ports[variant] = free_port()
            exits.enter_context(service("core", {**full, **settings}, port=ports[variant]))
        else:
            ports[variant] = stack_ports(exits, models_dir, {**(env or {}), **settings})["core"]
    return ports


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120, log: Path | None = None) -> None:
    """Until GET ``url`` answers 200; an error if ``proc`` exits first or the time runs out (naming ``log``)."""
    see = f"; see {log}" if log is not None else ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server of {url} exited with {proc.returncode}{see}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s{see}")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: list[float]) -> float:
    """The value nine in ten of ``values`` do not exceed (nan for none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


class Report:
    """Rows of (benchmark, metric, value, unit, target, note), printed as a table and saved as JSON."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def add(self, bench: str, metric: str, value: float, unit: str, target: str = "", note: str = "") -> None:
        self.rows.append(
            {
                "bench": bench,
                "metric": metric,
                "value": round(value, 4),
                "unit": unit,
                "target": target,
                "note": note,
            }
        )

    def print(self) -> None:
        table = Table(title="voxstack benchmarks")
        for column in ("bench", "metric", "value", "unit", "target", "note"):
            table.add_column(column)
        for row in self.rows:
            table.add_row(*(str(row[c]) for c in ("bench", "metric", "value", "unit", "target", "note")))
        Console(width=160).print(table)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count()}
        path.write_text(json.dumps({"meta": meta, "results": self.rows}, indent=2) + "\n")
