"""The whole stack as real processes on free ports, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
from conftest import free_port
from helpers import voxstack_command, wait_serving


class Stack:
    """asr, llm, tts and core as `voxstack serve` processes; each can be stopped and started again."""

    def __init__(self, models_dir: Path, logs: Path, env: dict[str, str] | None = None) -> None:
        self.logs = logs
        self.ports = {name: free_port() for name in ("asr", "llm", "tts", "core")}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSTACK_")}
        self.env["VOXSTACK_MODELS_DIR"] = str(models_dir)
        for name, port in self.ports.items():
            self.env[f"VOXSTACK_{name.upper()}__PORT"] = str(port)
        self.env |= env or {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['core']}"

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> None:
        with (self.logs / f"{name}.log").open("a") as out:
            self.procs[name] = subprocess.Popen(
                voxstack_command("serve", name, "--mode", "dev"), env=self.env, stdout=out, stderr=out
            )

    def wait(self, name: str, timeout: float = 120) -> None:
        proc = self.procs[name]
        if name != "core":
            wait_serving(self.address(name), proc, timeout)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, (self.logs / "core.log").read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("core not healthy in time")

    def up(self) -> Stack:
        for name in ("asr", "llm", "tts", "core"):
            self.start(name)
        for name in ("asr", "llm", "tts", "core"):
            self.wait(name)
        return self

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def down(self) -> None:
        for name in list(self.procs):
            self.stop(name)
