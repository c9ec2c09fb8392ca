"""Replicas behind one name: the core balances per call over tts processes (the scripted fake: what is
under test is the core's balancing).

A list target spreads calls and survives a replica killed mid-load (only calls
in flight on it may fail); a dns:/// target follows replicas added behind the
name without a core restart, and a replica that says NOT_SERVING gets no calls.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import pytest
from dns_server import dns_server
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from voxstack.testing.fakes import FACTORIES
from voxstack.testing.processes import ServiceProcess, eventually, free_port
from voxstack.testing.replicas import calls_across_a_kill, metric_sum, upstream_calls

pytestmark = pytest.mark.slow

SPEAK = {"text": "Hello there.", "sample_rate": 16000}
# Short connection lives, so the core re-resolves the name soon after a replica comes or goes.
FAST_AGE = {"VOXSTACK_TTS__MAX_CONNECTION_AGE": "1"}


def replica_calls(core: str) -> dict[str, float]:
    return upstream_calls(core, "tts")


def retries(core: str) -> float:
    return sum(metric_sum(core, "voxstack_core_upstream_retries_total", stage="tts").values())


def speak(core: str, client: httpx.Client | None = None) -> int:
    return (client or httpx).post(f"{core}/v1/speak", json=SPEAK, timeout=60).status_code


def owner(calls: dict[str, float], proc: ServiceProcess) -> float:
    """Calls answered by ``proc`` (replicas are named HOSTNAME/HOST:PORT)."""
    return sum(n for name, n in calls.items() if name.endswith(f"/{proc.address}"))


@pytest.fixture
def started() -> Iterator[list[ServiceProcess]]:
    """Processes a test starts; all stopped at its end."""
    procs: list[ServiceProcess] = []
    yield procs
    for proc in procs:
        proc.stop()


def start(started: list[ServiceProcess], name: str, log: Path, mode: str = "prod", **kwargs: object) -> ServiceProcess:
    """A process of ``name``: the core, or a model service's scripted fake (what balances is the core's)."""
    factory = FACTORIES.get(name)
    proc = ServiceProcess(name, mode=mode, log=log, factory=factory, **kwargs).start()  # type: ignore[arg-type]
    started.append(proc)
    return proc


def core_for(started: list[ServiceProcess], tmp_path: Path, tts: str) -> ServiceProcess:
    """A core (dev: open /metrics) whose tts is ``tts``; asr and llm point at nothing, unused here."""
    env = {"VOXSTACK_CORE__TTS_ADDRESS": tts, "VOXSTACK_CORE__ASR_ADDRESS": f"127.0.0.1:{free_port()}"}
    env["VOXSTACK_CORE__LLM_ADDRESS"] = f"127.0.0.1:{free_port()}"
    return start(started, "core", tmp_path / "core.log", env=env, mode="dev").wait_live()


def test_calls_spread_over_a_list_and_survive_a_killed_replica(tmp_path: Path, started) -> None:
    a = start(started, "tts", tmp_path / "a.log")
    b = start(started, "tts", tmp_path / "b.log")
    a.wait_serving(), b.wait_serving()
    core = core_for(started, tmp_path, f"{a.address},{b.address}").url

    for _ in range(12):
        assert speak(core) == 200
    calls = replica_calls(core)
    # round_robin alternates: each replica answers about half.
    assert owner(calls, a) >= 4 and owner(calls, b) >= 4, calls

    # Load from three callers; b is killed in the middle of it.
    before_kill: dict[str, float] = {}

    def kill_b() -> None:
        before_kill.update(replica_calls(core))
        b.send_signal(signal.SIGKILL)

    run = calls_across_a_kill(lambda client: speak(core, client), kill_b, callers=3, seconds=6.0, kill_after=2.0)
    after = run.after
    assert after and all(code == 200 for code in after), run.results
    # Only calls in flight on b when it died may have failed (three callers: at most three).
    assert len(run.failed_before) <= 3, run.results
    calls = replica_calls(core)
    assert owner(calls, b) - owner(before_kill, b) <= 3, (before_kill, calls)
    assert owner(calls, a) > owner(before_kill, a) + len(after) - 3


class Watched(health.HealthServicer):
    """The real health servicer, noting that a client watches it (the core's balancer did connect)."""

    def __init__(self) -> None:
        super().__init__()
        self.watched = threading.Event()

    def Watch(self, request, context, send_response_callback=None):  # type: ignore[no-untyped-def]
        self.watched.set()
        return super().Watch(request, context, send_response_callback)


@pytest.fixture
def not_serving_replica() -> Iterator[tuple[Watched, list[str], int]]:
    """A gRPC server on 127.0.0.2 with the health service (NOT_SERVING) and a tts that records and refuses calls.

    It stands for a replica still loading its engine: only the health service matters, and its tts
    calls are refused UNAVAILABLE, which the core retries elsewhere.
    """
    watched = Watched()
    watched.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    seen: list[str] = []

    class AnyTts(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            method = details.method
            if not method.startswith("/voxstack.v1.Tts/"):
                return None

            def refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
                seen.append(method)
                context.abort(grpc.StatusCode.UNAVAILABLE, "a stand-in replica")
                return b""

            if method.endswith("Stream"):
                return grpc.unary_stream_rpc_method_handler(lambda r, c: iter([refuse(r, c)]))
            return grpc.unary_unary_rpc_method_handler(refuse)

    server = grpc.server(futures.ThreadPoolExecutor(4))
    health_pb2_grpc.add_HealthServicer_to_server(watched, server)
    server.add_generic_rpc_handlers((AnyTts(),))
    port = free_port()
    server.add_insecure_port(f"127.0.0.2:{port}")
    server.start()
    try:
        yield watched, seen, port
    finally:
        server.stop(0)


def test_a_name_follows_replicas_added_and_skips_one_not_serving(tmp_path: Path, started, not_serving_replica) -> None:
    watched, seen, port = not_serving_replica
    name = "tts.replicas.test"
    with dns_server() as (names, dns_port):
        names.set(name, ["127.0.0.1"])
        a = start(started, "tts", tmp_path / "a.log", port=port, env=FAST_AGE)
        a.wait_serving()
        core_proc = core_for(started, tmp_path, f"dns://127.0.0.1:{dns_port}/{name}:{port}")
        core = core_proc.url
        for _ in range(3):
            assert speak(core) == 200
        assert owner(replica_calls(core), a) == 3

        # A replica that says NOT_SERVING joins the name: the core connects to it, watches its health, sends no call.
        names.set(name, ["127.0.0.1", "127.0.0.2"])
        deadline = time.monotonic() + 30
        while not watched.watched.is_set() and time.monotonic() < deadline:
            assert speak(core) == 200
            time.sleep(0.1)
        assert watched.watched.is_set(), "the core never resolved the name again"
        retried = retries(core)
        for _ in range(8):
            assert speak(core) == 200
        assert seen == [] and retries(core) == retried

        # A real replica joins: it gets calls, without a restart of the core.
        c = start(started, "tts", tmp_path / "c.log", port=port, host="127.0.0.3", env=FAST_AGE)
        c.wait_serving()
        names.set(name, ["127.0.0.1", "127.0.0.2", "127.0.0.3"])

        def c_answers() -> None:
            assert speak(core) == 200
            assert owner(replica_calls(core), c) > 0

        eventually(c_answers, "a call answered by the added replica", timeout=30, every=0.1)
        assert seen == [], "calls reached the replica that is not serving"
        assert core_proc.poll() is None  # the same core instance throughout
