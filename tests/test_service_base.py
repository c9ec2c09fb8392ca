"""The shared service base with a real grpc.aio server on port 0 and the echo test service."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from echo_service import EchoService
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from voxtest.v1 import echo_pb2, echo_pb2_grpc

from voxstack.config import GrpcServiceSettings, Settings, load_settings
from voxstack.rpc_status import failure_from_error
from voxstack.server.host import BindError, ServiceHost

pytestmark = pytest.mark.usefixtures("clean_env")

HostFactory = Callable[..., "asyncio.Future[ServiceHost]"]


class Running:
    """A started host plus a channel to it."""

    def __init__(self, host: ServiceHost, gate: asyncio.Event, channel: grpc.aio.Channel) -> None:
        self.host = host
        self.gate = gate
        self.channel = channel
        self.echo = echo_pb2_grpc.EchoStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)

    async def status(self, service: str = "") -> int:
        reply = await self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return reply.status


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., asyncio.Future[Running]]]:
    running: list[Running] = []

    async def _start(
        settings: Settings | None = None, *, ready: bool = True, max_message_bytes: int = 1024 * 1024
    ) -> Running:
        settings = settings or load_settings(mode="prod")
        gate = asyncio.Event()
        section = GrpcServiceSettings(host="127.0.0.1", port=0, max_message_bytes=max_message_bytes)
        host = ServiceHost(EchoService(gate=gate), settings, section)
        port = await host.start()
        assert port > 0
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        run = Running(host, gate, channel)
        running.append(run)
        if ready:
            gate.set()
            await host.wait_ready()
        return run

    yield _start  # type: ignore[misc]
    for run in running:
        await run.channel.close()
        await run.host.stop(grace=0)


async def test_health_goes_from_not_serving_to_serving_when_engine_is_ready(start) -> None:
    run = await start(ready=False)
    assert await run.status() == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await run.status("voxtest.v1.Echo") == health_pb2.HealthCheckResponse.NOT_SERVING
    assert not run.host.ready
    # Calls before the engine is ready are refused as UNAVAILABLE, not hung or crashed.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await run.echo.Say(echo_pb2.SayRequest(text="early"), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "not loaded yet" in info.value.details()

    run.gate.set()
    await run.host.wait_ready()
    assert await run.status() == health_pb2.HealthCheckResponse.SERVING
    assert await run.status("voxtest.v1.Echo") == health_pb2.HealthCheckResponse.SERVING
    reply = await run.echo.Say(echo_pb2.SayRequest(text="hello"), timeout=5)
    assert reply.text == "hello"


async def test_reflection_lists_the_service_in_dev(start) -> None:
    run = await start(load_settings(mode="dev"))
    stub = reflection_pb2_grpc.ServerReflectionStub(run.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield request

    names = set()
    async for reply in stub.ServerReflectionInfo(requests(), timeout=5):
        names |= {s.name for s in reply.list_services_response.service}
    assert {"voxtest.v1.Echo", "grpc.health.v1.Health"} <= names


async def test_prod_serves_no_reflection_unless_asked(start) -> None:
    def reflection_calls(run: Running, ask: bool = True) -> Any:
        stub = reflection_pb2_grpc.ServerReflectionStub(run.channel)

        async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
            if ask:
                yield reflection_pb2.ServerReflectionRequest(list_services="")

        return stub.ServerReflectionInfo(requests(), timeout=5)

    # No request message where the method is not served: a message still being sent when the server's
    # UNIMPLEMENTED arrives fails on the client's side (INTERNAL), a race of the client, not the server.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in reflection_calls(await start(load_settings(mode="prod")), ask=False):
            pass
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    replies = [r async for r in reflection_calls(await start(load_settings(mode="prod", reflection=True)))]
    assert replies


@pytest.mark.parametrize("mode", ["dev", "prod"])
async def test_bad_input_is_invalid_argument_with_traceback_only_in_dev(start, mode: str) -> None:
    run = await start(load_settings(mode=mode))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await run.echo.Say(echo_pb2.SayRequest(text="x", fail="invalid"), timeout=5)
    failure = failure_from_error(info.value)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.message == "text must not say 'invalid'"
    assert failure.reason == "BAD_TEXT"
    assert failure.request_id
    if mode == "dev":
        assert "Traceback" in failure.traceback
        assert "maybe_fail" in failure.traceback
        assert "InvalidInput" in failure.describe()
    else:
        assert failure.traceback == ""
        assert failure.describe() == "INVALID_ARGUMENT: text must not say 'invalid' [BAD_TEXT]"
    # The service keeps serving.
    assert (await run.echo.Say(echo_pb2.SayRequest(text="ok"), timeout=5)).text == "ok"


@pytest.mark.parametrize("mode", ["dev", "prod"])
async def test_unexpected_errors_are_internal_and_leak_nothing_in_prod(start, mode: str, caplog) -> None:
    run = await start(load_settings(mode=mode))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await run.echo.Say(echo_pb2.SayRequest(fail="crash"), timeout=5)
    failure = failure_from_error(info.value)
    assert failure.code is grpc.StatusCode.INTERNAL
    if mode == "dev":
        assert failure.message == "RuntimeError: engine exploded near tan"
        assert "secret_local" in failure.traceback
    else:
        assert failure.message == f"internal error (request id {failure.request_id})"
        assert "exploded" not in failure.describe()
    # The server log keeps the traceback either way.
    logged = [r for r in caplog.records if r.exc_info and "unexpected error" in r.getMessage()]
    assert logged and logged[0].exc_info[0] is RuntimeError


async def test_too_large_is_resource_exhausted(start) -> None:
    run = await start()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await run.echo.Say(echo_pb2.SayRequest(fail="too_large"), timeout=5)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure_from_error(info.value).reason == "RESOURCE_EXHAUSTED"


async def test_message_size_limit_comes_from_settings(start) -> None:
    run = await start(max_message_bytes=64 * 1024)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await run.echo.Say(echo_pb2.SayRequest(payload=b"x" * 100_000), timeout=5)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await run.echo.Say(echo_pb2.SayRequest(payload=b"x" * 1000, text="small"), timeout=5)).text == "small"


async def test_servicer_abort_passes_through(start) -> None:
    run = await start()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await run.echo.Say(echo_pb2.SayRequest(fail="abort"), timeout=5)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "the servicer said no"


async def test_request_id_is_returned_and_generated_when_absent(start, caplog) -> None:
    run = await start()
    caplog.set_level(logging.INFO, logger="voxstack.server.interceptor")
    call = run.echo.Say(echo_pb2.SayRequest(text="a"), metadata=(("x-request-id", "given-1"),), timeout=5)
    await call
    assert ("x-request-id", "given-1") in tuple(await call.trailing_metadata())
    call = run.echo.Say(echo_pb2.SayRequest(text="b"), timeout=5)
    await call
    generated = dict(await call.trailing_metadata())["x-request-id"]
    assert len(generated) == 32
    lines = [r for r in caplog.records if getattr(r, "method", "") == "/voxtest.v1.Echo/Say"]
    assert [(r.request_id, r.code) for r in lines] == [("given-1", "OK"), (generated, "OK")]
    assert all(r.duration_ms >= 0 for r in lines)
    assert "/voxtest.v1.Echo/Say OK" in lines[0].getMessage()


async def test_streaming_kinds_pass_through_the_interceptor(start) -> None:
    run = await start(load_settings(mode="dev"))
    counted = [r.index async for r in run.echo.Count(echo_pb2.CountRequest(n=3), timeout=5)]
    assert counted == [0, 1, 2]

    async def texts(*words: str, fail: str = "") -> AsyncIterator[echo_pb2.SayRequest]:
        for word in words:
            yield echo_pb2.SayRequest(text=word)
        if fail:
            yield echo_pb2.SayRequest(fail=fail)

    assert (await run.echo.Collect(texts("a", "b"), timeout=5)).text == "a b"
    assert [r.text async for r in run.echo.Chat(texts("x", "y"), timeout=5)] == ["X", "Y"]

    # An error after some streamed replies still arrives as a typed status.
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for reply in run.echo.Chat(texts("x", fail="invalid"), timeout=5):
            received.append(reply.text)
    assert received == ["X"]
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "Traceback" in failure_from_error(info.value).traceback


async def test_cancelled_stream_is_logged_as_cancelled(start, caplog) -> None:
    run = await start()
    caplog.set_level(logging.INFO, logger="voxstack.server.interceptor")
    call = run.echo.Count(echo_pb2.CountRequest(n=100, interval_seconds=0.05), timeout=10)
    async for _ in call:
        break
    call.cancel()
    # The server sees the cancellation at its next step; a busy machine may take a while to get there.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(getattr(r, "code", "") == "CANCELLED" for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    assert any(getattr(r, "code", "") == "CANCELLED" for r in caplog.records)
    assert (await run.echo.Say(echo_pb2.SayRequest(text="next"), timeout=5)).text == "next"


async def test_engine_load_failure_ends_run_with_exit_code_1() -> None:
    settings = load_settings(mode="prod")
    host = ServiceHost(EchoService(fail_load=True), settings, GrpcServiceSettings(port=0))
    assert await asyncio.wait_for(host.run(), timeout=10) == 1
    assert isinstance(host.load_error, RuntimeError)
    with pytest.raises(RuntimeError):
        await host.wait_ready()


async def test_binding_a_taken_port_is_a_bind_error(start) -> None:
    run = await start()  # prod: no SO_REUSEPORT, so a second bind must fail
    other = ServiceHost(EchoService(), load_settings(mode="prod"), GrpcServiceSettings(port=run.host.port))
    with pytest.raises(BindError, match="in use"):
        await other.start()


async def test_reuse_port_lets_two_servers_share_a_port(start) -> None:
    run = await start(load_settings(mode="dev"))
    service = EchoService()
    twin = ServiceHost(service, load_settings(mode="dev"), GrpcServiceSettings(port=run.host.port))
    assert await twin.start() == run.host.port
    await twin.wait_ready()
    await twin.stop(grace=0)
    assert service.closed


async def test_undecodable_requests_are_invalid_argument(start) -> None:
    run = await start()
    # Field 1 (text) with bytes that are not UTF-8: protobuf refuses to parse it.
    bad = b"\x0a\x02\xff\xfe"
    say = run.channel.unary_unary("/voxtest.v1.Echo/Say")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await say(bad, timeout=5)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "the request is not a valid message" in info.value.details()

    chat = run.channel.stream_stream("/voxtest.v1.Echo/Chat")

    async def messages():
        yield echo_pb2.SayRequest(text="fine").SerializeToString()
        yield bad

    replies = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for reply in chat(messages(), timeout=5):
            replies.append(echo_pb2.SayReply.FromString(reply).text)
    assert replies == ["FINE"]
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (await run.echo.Say(echo_pb2.SayRequest(text="after"), timeout=5)).text == "after"
