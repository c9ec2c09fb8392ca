"""Shared test fixtures: the echo test service's stubs, free ports, subprocess env."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxstack import protogen
from voxstack.testing.processes import child_env

TESTS_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    # Stubs for tests/proto are generated per run, never committed.
    out = Path(tempfile.mkdtemp(prefix="voxtest-stubs-"))
    protogen.generate(out, TESTS_DIR / "proto")
    config.voxtest_stubs = out  # type: ignore[attr-defined]
    sys.path[:0] = [str(out), str(TESTS_DIR)]


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
    from voxstack.models import DEFAULT_MODELS, pull

    directory = load_settings().models_dir
    for name in ("asr", "tts"):
        pull(DEFAULT_MODELS[name], directory)
    return directory


@pytest.fixture(scope="session")
def speech(models_dir: Path):
    from speech import SpeechMaker

    from voxstack.models import DEFAULT_MODELS

    return SpeechMaker(DEFAULT_MODELS["tts"].path(models_dir))
