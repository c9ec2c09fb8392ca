"""A small service on the shared base, for tests: echo, count, collect, chat."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import grpc
from voxtest.v1 import echo_pb2, echo_pb2_grpc

from voxstack.config import Settings
from voxstack.errors import InvalidInput, TooLarge


async def maybe_fail(kind: str, context: grpc.aio.ServicerContext) -> None:
    if kind == "invalid":
        raise InvalidInput("text must not say 'invalid'", reason="BAD_TEXT")
    if kind == "too_large":
        raise TooLarge("payload is over the limit")
    if kind == "crash":
        secret_local = "tangerine-42"
        raise RuntimeError(f"engine exploded near {secret_local[:3]}")
    if kind == "abort":
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "the servicer said no")


class EchoServicer(echo_pb2_grpc.EchoServicer):
    async def Say(self, request: echo_pb2.SayRequest, context: grpc.aio.ServicerContext) -> echo_pb2.SayReply:
        await maybe_fail(request.fail, context)
        return echo_pb2.SayReply(text=request.text)

    async def Count(
        self, request: echo_pb2.CountRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[echo_pb2.CountReply]:
        for i in range(request.n):
            if i:
                await asyncio.sleep(request.interval_seconds)
            yield echo_pb2.CountReply(index=i)
        await maybe_fail(request.fail, context)

    async def Collect(
        self, request_iterator: AsyncIterator[echo_pb2.SayRequest], context: grpc.aio.ServicerContext
    ) -> echo_pb2.SayReply:
        texts = [r.text async for r in request_iterator]
        return echo_pb2.SayReply(text=" ".join(texts))

    async def Chat(
        self, request_iterator: AsyncIterator[echo_pb2.SayRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[echo_pb2.SayReply]:
        async for request in request_iterator:
            await maybe_fail(request.fail, context)
            yield echo_pb2.SayReply(text=request.text.upper())


class EchoService:
    """The Service the host runs; ``gate`` holds the engine 'loading' until set."""

    name = "echo"
    grpc_names = ("voxtest.v1.Echo",)

    def __init__(self, gate: asyncio.Event | None = None, fail_load: bool = False) -> None:
        self.gate = gate
        self.fail_load = fail_load
        self.closed = False

    def register(self, server: grpc.aio.Server) -> None:
        echo_pb2_grpc.add_EchoServicer_to_server(EchoServicer(), server)

    async def start(self) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_load:
            raise RuntimeError("the echo engine failed to load")

    async def close(self) -> None:
        self.closed = True


def create(settings: Settings) -> EchoService:
    """Factory for ``voxstack serve echo_service:create``; ECHO_FAIL_LOAD=1 makes loading fail."""
    return EchoService(fail_load=os.environ.get("ECHO_FAIL_LOAD") == "1")
