"""Watching the source tree: native events, or polling when events do not arrive.

Bind mounts from Docker Desktop, WSL or network filesystems often deliver no
inotify events. At start a probe file is written and, if its event does not
arrive within a second, the watcher falls back to polling; a setting forces
either. Where no probe can be written (a read-only mount, as the Compose dev
containers have), it watches both ways until native events prove to work on
a save (polling then stops) or polling has seen saves they missed for two
seconds (native watching then stops). A burst of saves is yielded once, after
``step_ms`` of quiet.
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

from voxstack.server.feed import Feed, Producer

logger = logging.getLogger(__name__)

WATCHED_SUFFIXES = (".py", ".proto")
WATCHED_NAMES = ("pyproject.toml",)
# Editor temp and swap files, generated stubs, and our own probe.
DEFAULT_IGNORES = (
    "*.swp", "*.swo", "*.swx", "*~", ".#*", "#*#", "4913", "*.tmp", "*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py",
    ".voxstack-probe-*",
)  # fmt: skip
PROBE_SECONDS = 1.5
# Without a probe: how long after polling saw a change native events may still report it.
NATIVE_GRACE = 2.0


class SourceFilter(DefaultFilter):
    """watchfiles' defaults (.git, __pycache__, virtualenvs, ...) plus ours: files with one of ``suffixes``
    or named one of ``names``."""

    def __init__(
        self,
        ignores: Sequence[str] = DEFAULT_IGNORES,
        suffixes: Sequence[str] = WATCHED_SUFFIXES,
        names: Sequence[str] = WATCHED_NAMES,
    ) -> None:
        super().__init__()
        self.ignores = tuple(ignores)
        self.suffixes = tuple(suffixes)
        self.names = tuple(names)

    def __call__(self, change: Change, path: str) -> bool:
        name = os.path.basename(path)
        if any(fnmatch.fnmatch(name, pattern) for pattern in self.ignores):
            return False
        if not ((self.suffixes and name.endswith(self.suffixes)) or name in self.names):
            return False
        return super().__call__(change, path)


async def native_events_work(directory: Path) -> bool | None:
    """Write a probe file and see whether a native event for it arrives; None when no probe can be written."""
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
            return None
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
    files: SourceFilter | None = None,
    recursive: bool = True,
) -> AsyncIterator[tuple[set[Path], float]]:
    """Sets of changed files (those ``files`` accepts: source files by default), each with the wall-clock
    time of the newest save in it. ``recursive=False`` watches only the directories' own files."""
    chosen = files or SourceFilter(ignores)
    where = ", ".join(str(p) for p in paths)
    if polling is None:
        works = await native_events_work(paths[0])
        if works is None:
            logger.info("watching %s (native events and polling until the first change shows which works)", where)
            async for item in _watch_both(paths, poll_ms, step_ms, chosen, recursive, stop_event):
                yield item
            return
        polling = not works
        if polling:
            logger.warning("file events do not arrive from %s: polling every %d ms instead", paths[0], poll_ms)
    logger.info("watching %s (%s)", where, "polling" if polling else "native events")
    async for changes in _awatch(paths, chosen, recursive, step_ms, polling, poll_ms, stop_event):
        yield _batch(_stamps(changes))


def _awatch(
    paths: Sequence[Path],
    files: SourceFilter,
    recursive: bool,
    step_ms: int,
    polling: bool,
    poll_ms: int,
    stop_event: asyncio.Event | None,
) -> AsyncIterator[set[tuple[Change, str]]]:
    return awatch(
        *paths,
        watch_filter=files,
        recursive=recursive,
        step=step_ms,
        force_polling=polling,
        poll_delay_ms=poll_ms,
        stop_event=stop_event,
    )


def _stamps(changes: set[tuple[Change, str]]) -> dict[Path, float]:
    """Each changed file with its modification time (-1 once deleted)."""
    files = {Path(p) for _, p in changes}
    return {f: f.stat().st_mtime if f.exists() else -1.0 for f in files}


def _batch(stamps: dict[Path, float]) -> tuple[set[Path], float]:
    saved = [t for t in stamps.values() if t >= 0]
    return set(stamps), max(saved) if saved else time.time()


async def _watch_both(
    paths: Sequence[Path],
    poll_ms: int,
    step_ms: int,
    files: SourceFilter,
    recursive: bool,
    stop_event: asyncio.Event | None,
) -> AsyncIterator[tuple[set[Path], float]]:
    """Native events and polling side by side until native events prove to work (then polling stops)
    or polling has seen a change that native events missed for NATIVE_GRACE seconds (then native stops).

    Polling may see a change a moment before native events do, so native events
    are preferred: a change polling reports is yielded at once, and native's
    report of the same save, if it follows, settles the choice without a second reload.
    """
    feed: Feed[tuple[str, set[tuple[Change, str]]]] = Feed()
    stops = {"native": asyncio.Event(), "polling": asyncio.Event()}

    def pump(kind: str) -> Producer:
        async def run() -> None:
            async for changes in _awatch(paths, files, recursive, step_ms, kind == "polling", poll_ms, stops[kind]):
                feed.put((kind, changes))

        return run

    async def relay_stop() -> None:
        if stop_event is None:
            return
        await stop_event.wait()
        for stop in stops.values():
            stop.set()

    kept: str | None = None
    polled_first_at: float | None = None
    last_polled: dict[Path, float] = {}  # what polling yielded while undecided
    try:
        async with feed.running(*(pump(kind) for kind in stops), companions=[relay_stop]):
            async for kind, changes in feed:
                stamps = _stamps(changes)
                if kept is None:
                    now = time.monotonic()
                    if kind == "native" or (polled_first_at is not None and now - polled_first_at > NATIVE_GRACE):
                        kept = kind
                        stops["polling" if kind == "native" else "native"].set()
                        why = "file events arrive" if kind == "native" else "file events do not arrive"
                        logger.info("watching with %s from now on (%s)", kind, why)
                        if stamps == last_polled:
                            continue  # the save polling already reported
                    else:
                        polled_first_at = polled_first_at or now
                        last_polled = stamps
                elif kind != kept:
                    continue
                yield _batch(stamps)
    finally:
        for stop in stops.values():
            stop.set()
