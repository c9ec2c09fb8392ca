"""The per-call interceptor: request id, readiness gate, error mapping, one log line.

Every RPC of a voxstack service passes through here, so servicers only raise
typed errors (``voxstack.errors``) and never build statuses themselves.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import trace

from voxstack.codes import ErrorCode
from voxstack.errors import InvalidInput, NotReady
from voxstack.logs import request_id_var
from voxstack.metrics.catalog import ServiceMetrics
from voxstack.rpc_status import REPLICA_KEY, REQUEST_ID_KEY, clean_request_id, status_for

logger = logging.getLogger(__name__)

# Infrastructure methods: always allowed (health must answer while loading) and
# logged at DEBUG only, since probes call them every few seconds.
INFRA_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class _Undecodable:
    """Stands in for a request whose bytes did not parse (e.g. invalid UTF-8 in a string)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def invalid(self) -> InvalidInput:
        return InvalidInput(f"the request is not a valid message: {self.error}", reason=ErrorCode.UNDECODABLE)


def _safe(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    # grpc would answer INTERNAL for a request that fails to parse; we make it
    # INVALID_ARGUMENT by handing the handler a marker instead.
    if deserialize is None:
        return None

    def safe(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:
            return _Undecodable(exc)

    return safe


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, _Undecodable):
            raise request.invalid()
        yield request


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and isinstance(value, str):
            return clean_request_id(value)
    return clean_request_id(None)


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler; see the module docstring."""

    def __init__(
        self,
        service: str,
        *,
        is_ready: Callable[[], bool],
        error_detail: bool,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.service = service
        self.is_ready = is_ready
        self.error_detail = error_detail
        self.metrics = metrics
        #: Set by the host once it listens: sent with every reply (REPLICA_KEY).
        self.replica = ""
        #: This instance's generation and code (voxstack.provenance), sent first on every call.
        self.served_by: tuple[tuple[str, str], ...] = ()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # unknown method: grpc answers UNIMPLEMENTED
        method: str = handler_call_details.method
        infra = method.startswith(INFRA_PREFIXES)
        if handler.response_streaming:
            behavior = handler.unary_stream or handler.stream_stream
            wrapped: Any = self._wrap_streaming(method, infra, behavior, handler.request_streaming)
            factory = (
                grpc.stream_stream_rpc_method_handler
                if handler.request_streaming
                else (grpc.unary_stream_rpc_method_handler)
            )
        else:
            behavior = handler.unary_unary or handler.stream_unary
            wrapped = self._wrap_unary(method, infra, behavior, handler.request_streaming)
            factory = (
                grpc.stream_unary_rpc_method_handler
                if handler.request_streaming
                else (grpc.unary_unary_rpc_method_handler)
            )
        return factory(
            wrapped,
            request_deserializer=_safe(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _wrap_unary(self, method: str, infra: bool, behavior: Any, request_streaming: bool) -> Any:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call = _Call(self, method, infra, context)
            try:
                await call.begin()
                response = await behavior(_incoming(request, request_streaming), context)
            except BaseException as exc:
                await call.fail(exc)
                raise  # not reached for mapped errors: fail() aborts
            call.end()
            return response

        return unary

    def _wrap_streaming(self, method: str, infra: bool, behavior: Any, request_streaming: bool) -> Any:
        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            call = _Call(self, method, infra, context)
            try:
                await call.begin()
                result = behavior(_incoming(request, request_streaming), context)
                if inspect.isasyncgen(result):
                    async for response in result:
                        yield response
                else:  # a handler that writes with context.write()
                    await result
            except BaseException as exc:
                await call.fail(exc)
                raise
            call.end()

        return streaming


def _incoming(request: Any, streaming: bool) -> Any:
    """The request as the handler should see it: checked, or an iterator that checks."""
    if streaming:
        return _checked(request)
    if isinstance(request, _Undecodable):
        raise request.invalid()
    return request


class _Call:
    """One RPC's bookkeeping between begin() and end()/fail()."""

    def __init__(self, owner: CallInterceptor, method: str, infra: bool, context: grpc.aio.ServicerContext) -> None:
        self.owner = owner
        self.method = method
        self.infra = infra
        self.context = context
        self.started = time.perf_counter()
        self.request_id = _request_id(context)

    async def begin(self) -> None:
        request_id_var.set(self.request_id)
        trace.get_current_span().set_attribute("voxstack.request_id", self.request_id)
        self.context.set_trailing_metadata(((REQUEST_ID_KEY, self.request_id), (REPLICA_KEY, self.owner.replica)))
        if self.infra:
            return
        if not self.owner.is_ready():
            raise NotReady(f"{self.owner.service} is starting: its engine is not loaded yet")
        if self.owner.served_by:
            await self.context.send_initial_metadata(self.owner.served_by)

    def end(self) -> None:
        code = self.context.code() or grpc.StatusCode.OK
        self._log(code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK)

    async def fail(self, exc: BaseException) -> None:
        if isinstance(exc, grpc.aio.AbortError):
            # The servicer aborted with its own status: already sent.
            code = self.context.code()
            self._log(code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN)
            return
        if isinstance(exc, asyncio.CancelledError):
            self._log(grpc.StatusCode.CANCELLED)
            return
        if not isinstance(exc, Exception):
            return  # KeyboardInterrupt, SystemExit: let them through untouched
        reply = status_for(exc, request_id=self.request_id, error_detail=self.owner.error_detail)
        if reply.code is grpc.StatusCode.INTERNAL:
            logger.error("unexpected error in %s", self.method, exc_info=exc)
        self._log(reply.code, reply.message)
        await self.context.abort(reply.code, reply.message, reply.trailing_metadata)

    def _log(self, code: grpc.StatusCode, message: str = "") -> None:
        seconds = time.perf_counter() - self.started
        duration_ms = seconds * 1000
        metrics = self.owner.metrics
        if metrics is not None and not self.infra:  # probes would drown the figures
            metrics.calls.labels(self.method, code.name).inc()
            metrics.call_seconds.labels(self.method).observe(seconds)
        if self.infra and code is grpc.StatusCode.OK:
            return  # probes every few seconds (a reload polls every 20 ms): noise
        if self.infra:
            level = logging.DEBUG
        elif code is grpc.StatusCode.INTERNAL:
            level = logging.ERROR
        elif code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
            level = logging.INFO
        else:
            level = logging.WARNING
        logger.log(
            level,
            "%s %s %.1f ms%s",
            self.method,
            code.name,
            duration_ms,
            f": {message}" if message else "",
            extra={
                "method": self.method,
                "code": code.name,
                "duration_ms": round(duration_ms, 2),
                "request_id": self.request_id,
            },
        )
