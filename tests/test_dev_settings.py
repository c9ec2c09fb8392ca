"""Settings reload in dev: a saved .env reloads exactly the services whose settings changed, with no
failed call; an invalid value keeps the old instances serving and says which variable is wrong."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devstack import DevRun

from voxstack.models import LLM_PRESETS
from voxstack.registry import ALL_SERVICES

pytestmark = pytest.mark.slow


@pytest.fixture
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    root = tmp_path_factory.mktemp("envs")  # short: the control sockets' paths have a length limit
    run = DevRun(root, root / "models", "dev", fakes=True)
    run.env.pop("VOXSTACK_LLM__PRESET")  # the environment wins over .env: this test sets it there
    run.start()
    try:  # stopped even when it never serves
        run.wait_for(lambda: run.serving(*ALL_SERVICES), 120, "the stack")
        yield run
    finally:
        run.stop()


class Calls:
    """Chat turns through the core (and the llm) in a loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    reply = client.post("/v1/chat", json={"message": "Hi"})
                    if reply.status_code != 200 or "event: done" not in reply.text:
                        self.failures.append(f"{reply.status_code} {reply.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.sent += 1
                self.stop.wait(0.02)

    def __enter__(self) -> Calls:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def generations(run: DevRun) -> dict[str, int]:
    return {n: run.generation(n) for n in ALL_SERVICES}


def save_env(run: DevRun, text: str) -> None:
    (run.root / ".env").write_text(text)


def served_models(run: DevRun) -> set[str]:
    return {m["id"] for m in httpx.get(f"http://127.0.0.1:{run.ports['core']}/v1/models", timeout=10).json()["data"]}


def test_a_saved_env_reloads_the_services_it_changed_and_a_bad_value_keeps_them(dev: DevRun) -> None:
    url = f"http://127.0.0.1:{dev.ports['core']}"
    with Calls(url) as calls:
        # One section's setting: that service alone.
        before = generations(dev)
        save_env(dev, "VOXSTACK_LLM__TEMPERATURE=0.3\n")
        dev.wait_for(lambda: dev.generation("llm") == before["llm"] + 1 and dev.serving("llm"), 60, "the llm reload")
        dev.wait_for(lambda: ".env: VOXSTACK_LLM__TEMPERATURE: reloading llm" in dev.output(), 10, "the reason")
        assert generations(dev) == before | {"llm": before["llm"] + 1}, dev.output()[-2000:]

        # Saved again with the same value: nothing reloads.
        before = generations(dev)
        save_env(dev, "# the assistant's sampling\nVOXSTACK_LLM__TEMPERATURE=0.3\n")
        dev.wait_for(lambda: "no setting a running service reads changed" in dev.output(), 10, "the unchanged save")
        assert generations(dev) == before

        # A setting the core reads too (which model /v1/models names): the llm and the core.
        small = Path(LLM_PRESETS["small"].gguf).stem
        assert small not in served_models(dev)
        save_env(dev, "VOXSTACK_LLM__TEMPERATURE=0.3\nVOXSTACK_LLM__PRESET=small\n")
        dev.wait_for(
            lambda: all(dev.generation(n) == before[n] + 1 for n in ("llm", "core")) and dev.serving(*ALL_SERVICES),
            60,
            "the llm and core reloads",
        )
        assert small in served_models(dev)
        assert {n: dev.generation(n) for n in ("asr", "tts")} == {n: before[n] for n in ("asr", "tts")}

        # An invalid value: the tts keeps serving with what it had, and says which variable is wrong.
        before = generations(dev)
        save_env(dev, "VOXSTACK_LLM__TEMPERATURE=0.3\nVOXSTACK_LLM__PRESET=small\nVOXSTACK_TTS__MAX_CONCURRENCY=lots\n")
        dev.wait_for(
            lambda: "VOXSTACK_TTS__MAX_CONCURRENCY" in dev.record()["services"]["tts"]["last_error"], 10, "the error"
        )
        tts = dev.record()["services"]["tts"]
        assert tts["state"] == "serving" and "'lots'" in tts["last_error"], tts
        assert "VOXSTACK_TTS__MAX_CONCURRENCY" not in dev.record()["services"]["asr"]["last_error"]
        status = dev.cli("status")
        assert "last error: .env: invalid setting VOXSTACK_TTS__MAX_CONCURRENCY" in status.stdout, status.stdout
        assert "invalid setting VOXSTACK_TTS__MAX_CONCURRENCY" in dev.output()
        assert generations(dev) == before

        # Fixed back to what the tts runs with: the error goes, nothing reloads.
        save_env(dev, "VOXSTACK_LLM__TEMPERATURE=0.3\nVOXSTACK_LLM__PRESET=small\n")
        dev.wait_for(lambda: not dev.record()["services"]["tts"]["last_error"], 10, "the error to clear")
        assert generations(dev) == before
    assert calls.sent > 20 and not calls.failures, (calls.sent, calls.failures[:5])
