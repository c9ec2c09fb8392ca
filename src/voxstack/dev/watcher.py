"""Watching the source tree: native events, or polling when events do not arrive.

Bind mounts from Docker Desktop, WSL or network filesystems often deliver no
inotify events. At start a probe file is written and, if its event does not
arrive within a second, the watcher falls back to polling; a setting forces
either. A burst of saves is yielded once, after ``step_ms`` of quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from watchfiles import Change, DefaultFilter, awatch

logger = logging.getLogger(__name__)

WATCHED_SUFFIXES = (".py", ".proto")
WATCHED_NAMES = ("pyproject.toml",)
# Editor temp and swap files, generated stubs, and our own probe.
DEFAULT_IGNORES = (
    "*.swp", "*.swo", "*.swx", "*~", ".#*", "#*#", "4913", "*.tmp", "*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py",
    ".voxstack-probe-*",
)  # fmt: skip
PROBE_SECONDS = 1.5


class SourceFilter(DefaultFilter):
    """watchfiles' defaults (.git, __pycache__, virtualenvs, ...) plus ours."""

    def __init__(self, ignores: Sequence[str] = DEFAULT_IGNORES) -> None:
        super().__init__()
        self.ignores = tuple(ignores)

    def __call__(self, change: Change, path: str) -> bool:
        name = os.path.basename(path)
        if any(fnmatch.fnmatch(name, pattern) for pattern in self.ignores):
            return False
        if not (name.endswith(WATCHED_SUFFIXES) or name in WATCHED_NAMES):
            return False
        return super().__call__(change, path)


async def native_events_work(directory: Path) -> bool:
    """Write a probe file and see whether a native event for it arrives."""
    stop = asyncio.Event()
    probe = directory / f".voxstack-probe-{os.getpid()}"
    seen = asyncio.Event()

    async def listen() -> None:
        async for changes in awatch(directory, stop_event=stop, step=20, recursive=False, force_polling=False):
            if any(Path(p).name == probe.name for _, p in changes):
                seen.set()
                return

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.2)  # let the watch start
    try:
        try:
            probe.write_text("probe")
        except OSError as exc:
            # A read-only mount (e.g. shared code in a container): nothing proves events arrive.
            logger.info("cannot write a probe file in %s (%s)", directory, exc.strerror or exc)
            return False
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(seen.wait(), PROBE_SECONDS)
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            probe.unlink()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 2)
    return seen.is_set()


async def watch(
    paths: Sequence[Path],
    *,
    polling: bool | None = None,
    poll_ms: int = 300,
    step_ms: int = 50,
    ignores: Sequence[str] = DEFAULT_IGNORES,
    stop_event: asyncio.Event | None = None,
) -> AsyncIterator[tuple[set[Path], float]]:
    """Sets of changed files, each with the wall-clock time of the newest save in it."""
    if polling is None:
        polling = not await native_events_work(paths[0])
        if polling:
            logger.warning("file events do not arrive from %s: polling every %d ms instead", paths[0], poll_ms)
    logger.info("watching %s (%s)", ", ".join(str(p) for p in paths), "polling" if polling else "native events")
    async for changes in awatch(
        *paths,
        watch_filter=SourceFilter(ignores),
        step=step_ms,
        force_polling=polling,
        poll_delay_ms=poll_ms,
        stop_event=stop_event,
    ):
        files = {Path(p) for _, p in changes}
        saved = [f.stat().st_mtime for f in files if f.exists()]
        yield files, max(saved) if saved else time.time()
