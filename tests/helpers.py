"""Helpers for tests that run voxstack as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from voxstack.health_check import check_health


def voxstack_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "voxstack", *args]


def wait_serving(address: str, proc: subprocess.Popen[str] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before SERVING")
        if check_health(address, timeout=1.0).serving:
            return
        time.sleep(0.05)
    raise AssertionError(f"{address} not SERVING within {timeout} s")


@contextmanager
def served(name: str, env_extra: dict[str, str], log: Path) -> Iterator[str]:
    """`voxstack serve NAME` in dev mode on a free port, output to ``log``; yields its address once SERVING."""
    from conftest import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSTACK_")} | env_extra
    with log.open("w") as out:
        proc = subprocess.Popen(
            voxstack_command("serve", name, "--port", str(port), "--mode", "dev"), env=env, stdout=out, stderr=out
        )
    address = f"127.0.0.1:{port}"
    try:
        wait_serving(address, proc, timeout=120)
        yield address
    finally:
        proc.terminate()
        proc.wait(30)
