"""What the replica tests and the replicas bench share: the spread of calls, and calls across a kill."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families


def metric_sum(url: str, name: str, headers: dict[str, str] | None = None, **labels: str) -> dict[str, float]:
    """Samples ``name`` at ``url``/metrics whose labels match, keyed by their remaining labels' values."""
    text = httpx.get(f"{url}/metrics", headers=headers, timeout=10).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                key = "/".join(v for k, v in sorted(sample.labels.items()) if k not in labels)
                found[key] = found.get(key, 0.0) + sample.value
    return found


def upstream_calls(url: str, stage: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    """Calls of ``stage`` the core at ``url`` saw answered, by replica (``HOSTNAME/HOST:PORT``)."""
    return metric_sum(url, "voxstack_core_upstream_calls_total", headers, stage=stage)


@dataclass
class KillRun:
    """Calls made by several callers while one replica was killed: (start time, HTTP status) each."""

    killed_at: float = float("inf")
    results: list[tuple[float, int]] = field(default_factory=list)

    @property
    def after(self) -> list[int]:
        """Statuses of the calls that started after the kill."""
        return [code for began, code in self.results if began > self.killed_at]

    @property
    def failed_before(self) -> list[int]:
        """Failed calls that had started before the kill (in flight on the killed replica, perhaps)."""
        return [code for began, code in self.results if began <= self.killed_at and code != 200]


def calls_across_a_kill(
    call: Callable[[httpx.Client], int], kill: Callable[[], None], *, callers: int, seconds: float, kill_after: float
) -> KillRun:
    """``callers`` threads calling back to back for ``seconds``; ``kill()`` after ``kill_after`` seconds. The
    calls go on for ``seconds - kill_after`` after the kill is done, however long it took (``docker kill``
    on a busy machine can take longer than the whole run)."""
    run = KillRun()
    lock = threading.Lock()
    stop = threading.Event()

    def caller() -> None:
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                began = time.monotonic()
                code = call(client)
                with lock:
                    run.results.append((began, code))

    with concurrent.futures.ThreadPoolExecutor(callers) as pool:
        running = [pool.submit(caller) for _ in range(callers)]
        try:
            time.sleep(kill_after)
            kill()
            # Counted from when the kill is done: a call that started while it was under way may have failed.
            run.killed_at = time.monotonic()
            time.sleep(seconds - kill_after)
        finally:
            stop.set()
        for done in running:
            done.result()
    return run
