"""What each service process uses while the load runs: CPU, RSS, threads, open files (from /proc)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Sample:
    at: float  # perf_counter
    cpu: float  # cores busy since the previous sample (1.0 = one core)
    rss_mib: float
    threads: int
    fds: int


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of stat)


def _snapshot(pid: int) -> tuple[int, float, int, int]:
    rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    threads = len(os.listdir(f"/proc/{pid}/task"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return _ticks(pid), rss_pages * PAGE / 2**20, threads, fds


class Probe:
    """Samples every process of ``pids`` (name -> pid) each ``every`` seconds until stopped."""

    def __init__(self, pids: dict[str, int], every: float = 1.0) -> None:
        self.pids = pids
        self.every = every
        self.samples: dict[str, list[Sample]] = {name: [] for name in pids}

    async def run(self) -> None:
        last = {name: (time.perf_counter(), _ticks(pid)) for name, pid in self.pids.items()}
        while True:
            await asyncio.sleep(self.every)
            for name, pid in self.pids.items():
                try:
                    ticks, rss, threads, fds = _snapshot(pid)
                except (OSError, IndexError):
                    continue  # gone (a fault test killed it): no sample
                now = time.perf_counter()
                then, before = last[name]
                last[name] = (now, ticks)
                cpu = (ticks - before) / TICKS / max(now - then, 1e-6)
                self.samples[name].append(Sample(now, cpu, rss, threads, fds))

    def between(self, start: float, end: float) -> dict[str, list[Sample]]:
        return {name: [s for s in samples if start <= s.at <= end] for name, samples in self.samples.items()}
