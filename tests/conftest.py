"""Shared test fixtures: the echo test service's stubs, the models, the shared real stack and the fake one, and
the tiers' marks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from voxstack import protogen
from voxstack.testing.processes import child_env, free_port, free_ports, voxstack_command, wait_until_serving

TESTS_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    # Stubs for tests/proto are generated per run, never committed.
    out = Path(tempfile.mkdtemp(prefix="voxtest-stubs-"))
    protogen.generate(out, TESTS_DIR / "proto")
    config.voxtest_stubs = out  # type: ignore[attr-defined]
    sys.path[:0] = [str(out), str(TESTS_DIR)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The tiers (docs/TESTING.md) follow what a test really uses: whatever needs the default
    # models asks for them through ``models_dir``, directly or through another fixture.
    for item in items:
        if "models_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.models)


def pytest_unconfigure(config: pytest.Config) -> None:
    out = getattr(config, "voxtest_stubs", None)
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def subprocess_env(pytestconfig: pytest.Config) -> dict[str, str]:
    """Environment for a child process that serves the echo service."""
    env = child_env()
    paths = [str(pytestconfig.voxtest_stubs), str(TESTS_DIR), env.get("PYTHONPATH", "")]  # type: ignore[attr-defined]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


@contextmanager
def echo_served(env: dict[str, str], *, merge_output: bool = False) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``voxstack serve echo_service:create --mode prod`` on a free port: (the process, its address) once SERVING.

    Its output is piped (stderr, or both streams merged) for the test to read;
    at the end it gets SIGTERM if still running, and SIGKILL if that is not enough.
    """
    port = free_port()
    proc = subprocess.Popen(
        voxstack_command("serve", "echo_service:create", "--port", str(port), "--mode", "prod"),
        env=env,
        stdout=subprocess.PIPE if merge_output else None,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        text=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        wait_until_serving("echo", address, proc)
        yield proc, address
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No VOXSTACK_ variables and a working directory without a .env file."""
    for key in list(os.environ):
        if key.startswith("VOXSTACK_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The default models, fetched once into the user's model cache (a no-op when present)."""
    from voxstack.config import load_settings
    from voxstack.models import pull, service_models

    directory = load_settings().models_dir
    for spec in (*service_models("asr"), *service_models("tts")):
        pull(spec, directory)
    return directory


@pytest.fixture
def client(stack):  # type: ignore[no-untyped-def]
    """An HTTP client of the core of the module's own ``stack`` fixture."""
    import httpx

    with httpx.Client(base_url=stack.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def asr(models_dir: Path):
    """Whisper in this process, to hear what the services say (the default asr model)."""
    from voxstack.asr.engine import WhisperEngine
    from voxstack.config import load_settings

    engine = WhisperEngine(load_settings(models_dir=str(models_dir)).asr, models_dir)
    engine.load()
    return engine


@pytest.fixture(scope="session")
def speech(models_dir: Path):
    from voxstack.models import VOICE
    from voxstack.testing.speech import SpeechMaker

    return SpeechMaker(VOICE.path(models_dir))


@pytest.fixture(scope="session")
def fake_stack(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The real core over the scripted fakes of asr, llm and tts, shared by the whole run (see ``fakes``)."""
    from stack import Stack

    logs = tmp_path_factory.mktemp("fake-stack")
    running = Stack(logs, logs, fakes=True).up()
    yield running
    running.down()


@pytest.fixture
def fakes(fake_stack):  # type: ignore[no-untyped-def]
    """The shared fake stack with its script cleared: each test writes the script it needs."""
    fake_stack.script.clear()
    yield fake_stack
    fake_stack.script.clear()


@pytest.fixture(scope="session")
def otlp_receiver():  # type: ignore[no-untyped-def]
    """A real OTLP trace receiver on loopback for the whole run: (receiver, port)."""
    from voxstack.testing.otlp import receiving

    with receiving() as running:
        yield running


@pytest.fixture(scope="session")
def real_stack(models_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The real asr, llm, tts and core with the default models, started once and shared by every test that
    needs real speech or real replies. Its settings are the union of what those tests need: replies that
    are the same each run, metrics ports. A test that needs other settings, or stops or kills a service,
    uses a stack of its own (or the fakes); the traces' test has its own, exporting to ``otlp_receiver``
    (see "Known" in docs/TESTING.md)."""
    from stack import TEST_LLM, Stack

    from voxstack.models import pull

    pull(TEST_LLM.model, models_dir)
    metrics_ports = dict(zip(("asr", "llm", "tts"), free_ports(3), strict=True))
    env = {
        "VOXSTACK_LLM__TEMPERATURE": "0",  # the same question gets the same reply
        "VOXSTACK_LLM__MAX_TOKENS": "60",
        **{f"VOXSTACK_{name.upper()}__METRICS_PORT": str(port) for name, port in metrics_ports.items()},
    }
    logs = tmp_path_factory.mktemp("real-stack")
    running = Stack(models_dir, logs, env).up()
    running.metrics_ports = metrics_ports
    yield running
    running.down()
