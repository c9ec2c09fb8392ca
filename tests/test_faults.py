"""Faults under a supervisor: a call that arrives while a killed service is being restarted waits for it
(within its deadline) instead of failing after the retries."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from devstack import DevRun

pytestmark = pytest.mark.slow


def test_a_call_sent_while_the_supervisor_restarts_a_killed_llm_waits_for_it(tmp_path: Path, models_dir: Path) -> None:
    from voxstack.models import DEFAULT_MODELS, pull

    pull(DEFAULT_MODELS["llm"], models_dir)
    run = DevRun(tmp_path, models_dir, "up")
    run.env["VOXSTACK_LLM__MAX_TOKENS"] = "8"
    run.start()
    try:
        run.wait_for(lambda: run.serving("asr", "llm", "tts", "core"), 240, "voxstack up")
        killed = run.pid("llm")
        os.kill(killed, signal.SIGKILL)
        # At once: the llm is dead, the supervisor has not restarted it yet.
        reply = httpx.post(f"http://127.0.0.1:{run.ports['core']}/v1/chat", json={"message": "Hi"}, timeout=90)
        assert reply.status_code == 200, reply.text
        assert "event: done" in reply.text, reply.text
        run.wait_for(lambda: run.serving("llm") and run.pid("llm") != killed, 60, "the llm restarted")
        assert "llm is unreachable (the supervisor says" in run.output(), run.output()[-3000:]
        assert "llm is back: sending the call again" in run.output()

        # Stopping while a restart is under way leaves no process behind.
        restarting = run.pid("llm")
        os.kill(restarting, signal.SIGKILL)
        run.wait_for(lambda: run.record()["services"]["llm"]["state"] in ("backoff", "starting"), 30, "a restart")
    finally:
        run.stop()
    assert leftovers(run.state) == []


def leftovers(state: Path) -> list[str]:
    """Processes still running with this run's state directory in their environment."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes()
            if f"XDG_STATE_HOME={state}".encode() in environ.split(b"\0"):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{proc.name}: {command}")
        except (OSError, ValueError):
            continue
    return found
