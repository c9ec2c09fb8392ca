"""Helpers for tests that run voxstack as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
import time

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
