"""Docker Swarm, for real: the stack file derived from the production Compose file, deployed on a
single-node swarm the test creates, two replicas per model service balanced by the core, one replica
killed and replaced by Swarm without a failed call that had not started. The swarm is left as found."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from docker_gate import require_docker

from voxstack.testing.compose import TAG, build_images, compose_env
from voxstack.testing.processes import eventually, free_port
from voxstack.testing.replicas import calls_across_a_kill, upstream_calls
from voxstack.testing.speech import silence, sounds_like, wav

pytestmark = [pytest.mark.slow, pytest.mark.docker]

ROOT = Path(__file__).resolve().parent.parent
STACK_FILE = ROOT / "deploy" / "swarm" / "docker-stack.yml"
KEY = "swarm-test-key-0123456789abcdef"
QUESTION = "What colour is the sky on a clear day?"


def docker(*args: str, check: bool = True, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr[-3000:]}")
    return result.stdout


def swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()


class Stack:
    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {KEY}"}

    def tasks(self, service: str) -> list[dict[str, Any]]:
        """Running tasks of a service, with their container ids."""
        out = docker("service", "ps", f"{self.name}_{service}", "--no-trunc", "--format", "{{json .}}")
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return [row for row in rows if row["CurrentState"].startswith("Running") and row["DesiredState"] == "Running"]

    def containers(self, service: str) -> list[dict[str, Any]]:
        ids = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={self.name}_{service}").split()
        return json.loads(docker("inspect", *ids)) if ids else []

    def upstream_calls(self, stage: str) -> dict[str, float]:
        return upstream_calls(self.url, stage, self.headers)

    def speak(self, client: httpx.Client) -> int:
        return client.post(f"{self.url}/v1/speak", json={"text": "Hello there."}, headers=self.headers).status_code


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    require_docker()
    build_images()
    found = swarm_state()
    assert found in ("inactive", "active"), f"the swarm is {found}: leave it in a settled state first"
    if found == "inactive":
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    name = f"voxtest{os.getpid()}"
    port = free_port()
    env = compose_env(VOXSTACK_TAG=TAG, VOXSTACK_PORT=str(port), VOXSTACK_API_KEYS=json.dumps([KEY]))
    try:
        docker("stack", "deploy", "--resolve-image", "never", "-c", str(STACK_FILE), name, env=env)
        yield Stack(name, port)
    finally:
        docker("stack", "rm", name, check=False)
        # Networks go once the tasks are gone; a swarm we made is left (the machine as found).
        deadline = time.monotonic() + 120
        while docker("network", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={name}").strip():
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        if found == "inactive":
            docker("swarm", "leave", "--force", check=False)
        assert swarm_state() == found


def test_a_swarm_stack_balances_over_replicas_and_replaces_a_killed_one(stack: Stack, speech) -> None:  # type: ignore[no-untyped-def]
    def all_running() -> None:
        for service, wanted in (("asr", 2), ("llm", 2), ("tts", 2), ("core", 1)):
            assert len(stack.tasks(service)) == wanted, (service, stack.tasks(service))
        health = httpx.get(f"{stack.url}/healthz", timeout=10)
        assert health.status_code == 200, health.text
        assert {s["status"] for s in health.json()["services"].values()} == {"SERVING"}

    eventually(all_running, "every task running and the stack healthy", timeout=300, every=2)

    # End to end: a spoken question answered, the reply heard back.
    question = wav(np.concatenate([silence(0.3), speech.say(QUESTION), silence(0.4)]))
    with httpx.Client(timeout=120) as client:
        answer = client.post(
            f"{stack.url}/v1/converse",
            content=question,
            headers={**stack.headers, "Content-Type": "audio/wav"},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert sounds_like(QUESTION, body["transcript"]), body["transcript"]
        assert body["reply"].strip() and base64.b64decode(body["audio"]["base64"])
        tts = stack.containers("tts")
        hostnames = {c["Config"]["Hostname"] for c in tts}
        assert len(hostnames) == 2

        # The core may have resolved the name before both tasks were up (Swarm has no depends_on): it
        # resolves again when a connection reaches its maximum age (30 s), and then uses both.
        def both_answer() -> None:
            assert stack.speak(client) == 200
            calls = stack.upstream_calls("tts")
            assert {r.split("/")[0] for r in calls} == hostnames, (calls, hostnames)

        eventually(both_answer, "tts calls answered by both replicas", timeout=90, every=0.5)

    # Two callers; one tts replica killed in the middle. Swarm starts a new task in its place.
    run = calls_across_a_kill(stack.speak, lambda: docker("kill", tts[0]["Id"]), callers=2, seconds=8.0, kill_after=3.0)
    assert run.after and all(code == 200 for code in run.after), run.results
    assert len(run.failed_before) <= 2, run.results

    def replaced() -> None:
        now = {c["Id"] for c in stack.containers("tts")}
        assert len(now) == 2 and tts[0]["Id"] not in now, now

    eventually(replaced, "Swarm replacing the killed tts task", timeout=120, every=1)
