"""The voxstack command, run as a real process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import echo_served

from voxstack.testing.processes import free_port, voxstack_command


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(voxstack_command(*args), capture_output=True, text=True, timeout=60, env=env)


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "health", "version"):
        assert command in result.stdout


def test_version() -> None:
    result = run("version")
    assert result.returncode == 0
    assert result.stdout.startswith("voxstack 0.")


@pytest.fixture
def echo_server(subprocess_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    # CLI flags over env: the env asks for dev, the flag for prod (JSON logs).
    with echo_served({**subprocess_env, "VOXSTACK_MODE": "dev"}) as served:
        yield served


def test_health_exit_codes(echo_server, subprocess_env: dict[str, str]) -> None:
    _, address = echo_server
    ok = run("health", "--addr", address)
    assert ok.returncode == 0
    assert ok.stdout.strip() == f"server at {address}: SERVING"
    named = run("health", "voxtest.v1.Echo", "--addr", address)
    assert named.returncode == 0
    unknown = run("health", "voxtest.v1.Nope", "--addr", address)
    assert unknown.returncode == 1
    assert "SERVICE_UNKNOWN" in unknown.stderr
    nothing = run("health", "--addr", f"127.0.0.1:{free_port()}", "--timeout", "1")
    assert nothing.returncode == 1
    assert "UNREACHABLE (nothing answering" in nothing.stderr
    not_grpc = run("health", "--timeout", "1")
    assert not_grpc.returncode == 2
    assert "no service given" in not_grpc.stderr
    unknown_name = run("health", "nope", "--timeout", "1")
    assert unknown_name.returncode == 2
    assert "unknown service 'nope'" in unknown_name.stderr


def test_flags_beat_env_in_a_served_process(echo_server) -> None:
    proc, _ = echo_server
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert lines and all(line["mode"] == "prod" for line in lines)
    assert any("SERVING" in line["message"] for line in lines)


def test_health_of_a_not_serving_server(subprocess_env: dict[str, str]) -> None:
    # A server whose engine never loads: the health service answers NOT_SERVING.
    import asyncio

    from echo_service import EchoService

    from voxstack.config import GrpcServiceSettings, load_settings
    from voxstack.server.host import ServiceHost

    async def scenario() -> subprocess.CompletedProcess[str]:
        host = ServiceHost(EchoService(gate=asyncio.Event()), load_settings(), GrpcServiceSettings(port=0))
        port = await host.start()
        try:
            return await asyncio.to_thread(run, "health", "--addr", f"127.0.0.1:{port}")
        finally:
            await host.stop(grace=0)

    result = asyncio.run(scenario())
    assert result.returncode == 1
    assert result.stderr.strip().endswith(": NOT_SERVING")


def test_bad_settings_stop_startup_with_one_line(subprocess_env: dict[str, str]) -> None:
    result = run("serve", "echo_service:create", env={**subprocess_env, "VOXSTACK_ASR__PORT": "http"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "invalid setting VOXSTACK_ASR__PORT (asr.port) = 'http': "
        "Input should be a valid integer, unable to parse string as an integer"
    )
    bad_flag = run("serve", "echo_service:create", "--log-level", "loud", env=subprocess_env)
    assert bad_flag.returncode == 2
    assert bad_flag.stderr.startswith("invalid setting VOXSTACK_LOG_LEVEL (log_level) = 'LOUD'")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope", "unknown service 'nope'"),
        ("no_such_module_xyz:create", "cannot import 'no_such_module_xyz'"),
        ("echo_service:missing", "'echo_service:missing' is not a callable service factory"),
    ],
)
def test_serve_rejects_unknown_services(subprocess_env: dict[str, str], ref: str, message: str) -> None:
    result = run("serve", ref, env=subprocess_env)
    assert result.returncode == 2
    assert message in result.stderr


def test_serve_reports_a_taken_port(echo_server, subprocess_env: dict[str, str]) -> None:
    _, address = echo_server
    port = address.rsplit(":", 1)[1]
    result = run("serve", "echo_service:create", "--port", port, "--mode", "prod", env=subprocess_env)
    assert result.returncode == 1
    assert "is the port in use?" in result.stderr


def test_the_lean_server_entry_names_what_is_wrong(subprocess_env: dict[str, str]) -> None:
    def lean(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "voxstack.server", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)

    unknown = lean("nosuch", env=subprocess_env)
    assert unknown.returncode == 2 and "unknown service 'nosuch'" in unknown.stderr
    bad = lean("asr", env={**subprocess_env, "VOXSTACK_ASR__PORT": "http"})
    assert bad.returncode == 2 and "VOXSTACK_ASR__PORT" in bad.stderr
    usage = lean("--help", env=subprocess_env)
    assert usage.returncode == 0 and "python -m voxstack.server" in usage.stdout
