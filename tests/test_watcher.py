"""The source watcher where no probe file can be written: native events and polling side by side."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from voxstack.dev import watcher


async def no_probe(directory: Path) -> None:
    return None  # as on a read-only mount


async def next_batch(changes, timeout: float = 10):  # type: ignore[no-untyped-def]
    return await asyncio.wait_for(anext(changes), timeout)


async def test_both_ways_until_the_first_change_then_one_report_per_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(watcher, "native_events_work", no_probe)
    caplog.set_level(logging.INFO, logger=watcher.__name__)
    stop = asyncio.Event()
    changes = watcher.watch([tmp_path], poll_ms=50, stop_event=stop)
    first = asyncio.create_task(next_batch(changes))
    await asyncio.sleep(0.5)  # both watchers running
    (tmp_path / "a.py").write_text("x = 1\n")
    files, _ = await first
    assert files == {tmp_path / "a.py"}

    second = asyncio.create_task(next_batch(changes))
    await asyncio.sleep(0.5)
    (tmp_path / "b.py").write_text("y = 2\n")
    files, _ = await second
    # Not a.py again: whichever watcher reported it second was recognised as the same save.
    assert files == {tmp_path / "b.py"}
    # Native events work here: they are kept and polling stops.
    assert "watching with native from now on (file events arrive)" in caplog.text

    stop.set()
    with pytest.raises(StopAsyncIteration):
        await next_batch(changes)
