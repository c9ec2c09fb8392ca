"""A Redis server of the tests' own (Debian's redis-server) on a free loopback port, or a skip (a failure in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from voxstack.testing.processes import free_port


def require_redis() -> str:
    """The redis-server binary; skip without it, unless VOXSTACK_REQUIRE_REDIS is set (CI): then fail."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("VOXSTACK_REQUIRE_REDIS"):
            pytest.fail("redis-server is required here (VOXSTACK_REQUIRE_REDIS is set) and is not installed")
        pytest.skip("redis-server is not installed")
    return binary


@contextmanager
def redis_server(workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server on 127.0.0.1 (no persistence) until the block ends; yields its URL and process."""
    port = free_port()
    command = [require_redis(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(workdir)]
    log = (workdir / "redis.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, (workdir / "redis.log").read_text()
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        log.close()
