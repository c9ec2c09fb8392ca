"""What the dev dashboard shows: each service's run state from the supervisor's record, its address and health.

The supervisor rewrites its record (``run.json`` in the state directory) on
every change of state: a reload starting, an instance serving, a crash, a
backoff; ``voxstack dev --replay`` writes beside it the verdicts of the
pinned conversations it replays after each reload. ``changes`` watches both
files (a stat every ``POLL`` seconds) and the services' health (every
``HEALTH_EVERY`` seconds) and yields a snapshot each time one changes, so a
save shows up on the page well within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from voxstack.config import Settings
from voxstack.recordings import REPLY_AUDIO
from voxstack.registry import ALL_SERVICES
from voxstack.runstate import RunState

POLL = 0.1
HEALTH_EVERY = 2.0

Health = Callable[[], Awaitable[dict[str, dict[str, str]]]]


def snapshot(settings: Settings, health: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The run state of every service, or only their health when no supervisor runs them."""
    runstate = RunState(settings.state_dir)
    record = runstate.read()
    services: dict[str, dict[str, Any]] = {}
    for name in ALL_SERVICES:
        section = settings.service(name)
        state = asdict(record.services[name]) if record is not None and name in record.services else {}
        address = settings.core.base_url if name == "core" else section.connect_address
        status = "SERVING" if name == "core" else health.get(name, {}).get("status", "UNKNOWN")
        services[name] = {**state, "address": address, "health": status}
    return {
        "mode": settings.mode.value,
        "supervised": record is not None,
        "supervisor_pid": record.supervisor_pid if record else 0,
        "started": record.started if record else 0.0,
        "services": services,
        "replays": runstate.read_replays() if record is not None else {},
        "now": time.time(),
    }


def _stamp(settings: Settings) -> tuple[tuple[int, int], ...]:
    runstate = RunState(settings.state_dir)
    stamps = []
    for path in (runstate.record_path, runstate.replays_path):
        try:
            stat = path.stat()
        except OSError:
            stamps.append((0, 0))
            continue
        stamps.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def replay_audio(settings: Settings, name: str, which: str) -> Path | None:
    """A replayed conversation's reply audio, ``old`` (the recording's) or ``new`` (the last replay's);
    None unless the last replay had a conversation of that name."""
    runstate = RunState(settings.state_dir)
    replays = runstate.read_replays()
    if name not in {v.get("name") for v in replays.get("verdicts", [])}:
        return None
    path = Path(replays["folder"]) / name / REPLY_AUDIO if which == "old" else runstate.replay_audio / f"{name}.wav"
    return path if path.is_file() else None


async def changes(settings: Settings, health: Health, stopping: Callable[[], bool]) -> AsyncIterator[dict[str, Any]]:
    """A snapshot now, then one on every change of the record or of health, until ``stopping()``."""
    latest: dict[str, dict[str, str]] = {}
    checked = asyncio.Event()

    async def watch_health() -> None:
        nonlocal latest
        while True:
            latest = await health()
            checked.set()
            await asyncio.sleep(HEALTH_EVERY)

    watcher = asyncio.create_task(watch_health())
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(checked.wait(), HEALTH_EVERY)
        sent: tuple[Any, ...] = ()
        while not stopping():
            seen = (_stamp(settings), tuple(sorted((k, v.get("status")) for k, v in latest.items())))
            if seen != sent:
                sent = seen
                yield snapshot(settings, latest)
            await asyncio.sleep(POLL)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
