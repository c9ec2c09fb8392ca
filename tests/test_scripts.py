"""scripts/*.sh: help texts, the choice of runtime, and the setup check on this machine."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from stack import TEST_ENV, TEST_LLM

from voxstack import protogen
from voxstack.models import pull

SCRIPTS = protogen.PROJECT_ROOT / "scripts"
NAMES = (
    "dev-start.sh", "dev-stop.sh", "dev-restart.sh", "dev-status.sh", "dev-logs.sh",
    "dev-test.sh", "dev-clean.sh", "dev-debug.sh", "validate-dev-setup.sh",
)  # fmt: skip


def run(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


@pytest.mark.parametrize("name", NAMES)
def test_each_script_has_help(name: str) -> None:
    result = run(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: scripts/{name}")
    assert "--compose" in result.stdout or (name == "validate-dev-setup.sh" and "--compose" in result.stdout)


def test_an_unknown_runtime_is_refused() -> None:
    result = run("dev-status.sh", env=os.environ | {"VOXSTACK_RUNTIME": "kubernetes"})
    assert result.returncode == 2
    assert "VOXSTACK_RUNTIME must be embedded or compose (got 'kubernetes')" in result.stderr


def test_dev_debug_needs_a_service() -> None:
    result = run("dev-debug.sh", "nothing")
    assert result.returncode == 2 and "name a service: core, asr, llm or tts" in result.stderr


@pytest.fixture
def check_env(tmp_path: Path, models_dir: Path) -> dict[str, str]:
    pull(TEST_LLM.model, models_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSTACK_")}
    return env | TEST_ENV | {"VOXSTACK_STATE_DIR": str(tmp_path / "state"), "VOXSTACK_MODELS_DIR": str(models_dir)}


def test_setup_check_passes_with_the_core_port_free(check_env: dict[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("validate-dev-setup.sh", env=check_env | {"VOXSTACK_CORE__PORT": str(port)})
    assert result.returncode == 0, result.stdout
    assert "ok    default models present and verified" in result.stdout
    assert f"ok    port {port} free" in result.stdout
    assert "the stack is not running" in result.stdout


def test_setup_check_names_a_port_taken_by_another_program(check_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("validate-dev-setup.sh", env=check_env | {"VOXSTACK_CORE__PORT": str(port)})
    assert result.returncode == 1
    assert f"FAIL  port {port}" in result.stdout and "VOXSTACK_CORE__PORT" in result.stdout
    assert "1 check(s) failed" in result.stdout


def test_setup_check_names_missing_models(check_env: dict[str, str], tmp_path: Path) -> None:
    result = run("validate-dev-setup.sh", env=check_env | {"VOXSTACK_MODELS_DIR": str(tmp_path / "empty")})
    assert result.returncode == 1
    assert "FAIL  default models" in result.stdout and "make models" in result.stdout
