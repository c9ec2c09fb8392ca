"""Graceful and forced shutdown of a real service process."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from conftest import echo_served
from voxtest.v1 import echo_pb2, echo_pb2_grpc

from voxstack.testing.processes import voxstack_command


@pytest.fixture
def server(subprocess_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with echo_served({**subprocess_env, "VOXSTACK_GRACE_PERIOD": "20"}, merge_output=True) as served:
        yield served


def stream_in_thread(address: str, n: int, interval: float) -> tuple[threading.Thread, list, list, threading.Event]:
    received: list[int] = []
    errors: list[grpc.RpcError] = []
    first = threading.Event()

    def run() -> None:
        with grpc.insecure_channel(address) as channel:
            try:
                for reply in echo_pb2_grpc.EchoStub(channel).Count(
                    echo_pb2.CountRequest(n=n, interval_seconds=interval), timeout=60
                ):
                    received.append(reply.index)
                    first.set()
            except grpc.RpcError as err:
                errors.append(err)
                first.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, received, errors, first


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_lets_in_flight_stream_finish_then_exits_0(server, signum: int) -> None:
    proc, address = server
    thread, received, errors, first = stream_in_thread(address, n=8, interval=0.15)
    assert first.wait(10)
    proc.send_signal(signum)
    time.sleep(0.3)
    # While draining, new calls are refused.
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError):
        echo_pb2_grpc.EchoStub(channel).Say(echo_pb2.SayRequest(text="late"), timeout=2)
    thread.join(20)
    assert errors == []
    assert received == list(range(8))
    output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "stopping gracefully" in output


def test_second_signal_forces_exit(server) -> None:
    proc, address = server
    thread, received, errors, first = stream_in_thread(address, n=1000, interval=0.1)
    assert first.wait(10)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert proc.poll() is None  # still draining the long stream (grace is 20 s)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=10)  # well inside the 20 s grace: forced, not drained
    assert proc.returncode == 128 + signal.SIGTERM
    assert "forcing exit" in output
    thread.join(10)
    assert errors and len(received) < 1000


def test_engine_failure_exits_non_zero_with_the_error(subprocess_env: dict[str, str]) -> None:
    result = subprocess.run(
        voxstack_command("serve", "echo_service:create", "--port", "0", "--mode", "dev"),
        env={**subprocess_env, "ECHO_FAIL_LOAD": "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "the echo engine failed to load" in result.stderr
    assert "[dev echo_service]" in result.stderr
