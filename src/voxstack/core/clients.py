"""gRPC clients of the asr, llm and tts services, as the core uses them.

Channels are made once and reused. Every call has a deadline, carries the
request id, and is retried with backoff only when refused before any reply
came (UNAVAILABLE, or CANCELLED by an instance that is stopping). A call still
refused after its retries waits, within its deadline and ``restart_wait_seconds``,
for its service to come back, whoever brings it back (`voxstack up`/`dev` set
that setting to the deadline; Compose sets 20): the same code however the
stack is run. A failure becomes a ``StageError`` naming the stage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import grpc
from prometheus_client import CollectorRegistry

from voxstack import provenance
from voxstack.codes import ErrorCode
from voxstack.config import Settings
from voxstack.errors import VoxError
from voxstack.health import check_channel
from voxstack.logs import request_id_var
from voxstack.metrics.catalog import CoreMetrics
from voxstack.registry import MODEL_SERVICES
from voxstack.rpc_status import REPLICA_KEY, REQUEST_ID_KEY, failure_from_error
from voxstack.tls import open_aio_channel
from voxstack.tracing import client_interceptors
from voxstack.v1 import asr_pb2, asr_pb2_grpc, llm_pb2_grpc, tts_pb2_grpc

logger = logging.getLogger(__name__)

# Refusals before any reply that a retry fixes: a service restarting, or an old
# instance that stops while a call is on its way (it cancels what it did not start).
# Our own cancellations never get here: they raise asyncio.CancelledError.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
# grpc's own transport failure (a stream reset by a server going away) says this;
# the services' INTERNAL errors never do, and are not retried.
TRANSPORT_INTERNAL = "Internal error from Core"
# First wait before reconnecting a broken channel (grpc's default is 1 s): a
# reload breaks connections while the successor already listens.
RECONNECT_BACKOFF_MS = 25


def retry_delay(attempt: int) -> float:
    """Seconds before retry ``attempt`` (0-based) of a refused call: 0, then 25 ms doubling.

    Most refusals come from an instance that stops while its successor already
    serves on the same port (a reload). It cancels the calls that reach it
    before its GOAWAY does: a retry at once lands on the successor, or, sent
    before the GOAWAY arrived, is cancelled again and the next one does. A
    connection the kernel had queued on the old listener is reset when that
    listener closes, and the channel reconnects after its backoff (25 ms,
    RECONNECT_BACKOFF_MS). A service that is really down is retried for 0.375 s
    (the default 5 retries).
    """
    return 0.0 if attempt == 0 else 0.025 * 2 ** (attempt - 1)


def retryable(err: grpc.aio.AioRpcError) -> bool:
    """A refusal that a retry fixes (only ever asked before any reply came)."""
    code = err.code()
    return code in RETRYABLE or (code is grpc.StatusCode.INTERNAL and err.details() == TRANSPORT_INTERNAL)


T = TypeVar("T")


class StageError(VoxError):
    """A backend call failed; ``stage`` says which, the status how, ``cause`` the backend's own reason."""

    # The caller's own bad input, reported by a stage, stays a 4xx.
    HTTP: ClassVar[dict[grpc.StatusCode, int]] = {
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    }
    # The services' RESOURCE_EXHAUSTED means a full queue (QUEUE_FULL: 429), except for these reasons,
    # raised as TooLarge on the caller's own input (413). Too long text and prompts are INVALID_ARGUMENT.
    TOO_LARGE: ClassVar[frozenset[str]] = frozenset({ErrorCode.AUDIO_TOO_LONG})
    # Statuses whose backend message is about the caller's request, safe to show in prod.
    CALLER_FACING: ClassVar[frozenset[grpc.StatusCode]] = frozenset(
        {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    )

    def __init__(self, stage: str, code: grpc.StatusCode, details: str, cause: str = "") -> None:
        super().__init__(f"{stage} failed: {code.name}: {details}", reason=f"{stage.upper()}_{code.name}")
        self.stage = stage
        self.code = code
        self.cause = cause
        self.details = details
        status = 413 if code is grpc.StatusCode.RESOURCE_EXHAUSTED and cause in self.TOO_LARGE else None
        # One class for every stage failure: its HTTP status follows the gRPC code.
        self.http_status = status or self.HTTP.get(code, 502)  # type: ignore[misc]  # a ClassVar on other errors

    @property
    def public_message(self) -> str:
        """The message for callers in prod: the backend's words only when they are about the request."""
        if self.code in self.CALLER_FACING:
            return f"{self.stage}: {self.details[:300]}"
        what = {
            grpc.StatusCode.UNAVAILABLE: "is unavailable",
            grpc.StatusCode.DEADLINE_EXCEEDED: "did not answer in time",
        }.get(self.code, "failed")
        return f"{self.stage} {what}"


def stage_error(stage: str, err: grpc.RpcError) -> StageError:
    if not isinstance(err, grpc.aio.AioRpcError | grpc.Call):
        return StageError(stage, grpc.StatusCode.UNKNOWN, str(err))
    failure = failure_from_error(err)
    return StageError(stage, failure.code, failure.message, failure.reason)


class Backends:
    """Channels and stubs to the three model services."""

    def __init__(self, settings: Settings, metrics: CoreMetrics | None = None) -> None:
        core = settings.core
        self.metrics = metrics or CoreMetrics(CollectorRegistry())
        self.addresses = {stage: settings.backend_address(stage) for stage in MODEL_SERVICES}
        self.timeouts = {"asr": core.asr_timeout, "llm": core.llm_timeout, "tts": core.tts_timeout}
        self.retries = core.retries
        self.restart_wait = core.restart_wait_seconds
        size = max(settings.asr.max_message_bytes, settings.tts.max_message_bytes)
        options = [
            ("grpc.max_send_message_length", size),
            ("grpc.max_receive_message_length", size),
            # A service that restarts is reached again within a second, not after
            # grpc's default backoff of up to two minutes.
            ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
            # grpc reads this one as the shortest time a connection attempt gets.
            ("grpc.min_reconnect_backoff_ms", 1000),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        interceptors = client_interceptors()  # the current trace goes along with every call
        self.channels = {s: open_aio_channel(a, settings.tls, options, interceptors) for s, a in self.addresses.items()}
        self.asr = asr_pb2_grpc.AsrStub(self.channels["asr"])
        self.llm = llm_pb2_grpc.LlmStub(self.channels["llm"])
        self.tts = tts_pb2_grpc.TtsStub(self.channels["tts"])

    @staticmethod
    def metadata() -> tuple[tuple[str, str], ...]:
        rid = request_id_var.get()
        return ((REQUEST_ID_KEY, rid),) if rid else ()

    async def unary(self, stage: str, method: Callable[..., Awaitable[T]], request: Any) -> T:
        """A unary call with deadline, request id and retries."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeouts[stage]
        attempt = 0
        while True:
            call: Any = method(request, timeout=max(0.01, deadline - loop.time()), metadata=self.metadata())
            try:
                reply: T = await call
                provenance.note(stage, await call.initial_metadata())
                await self._count_replica(stage, call)
                return reply
            except grpc.aio.AioRpcError as err:
                if not await self._should_retry(stage, attempt, err, deadline):
                    raise self._failed(stage, err) from None
                attempt += 1

    async def stream(self, stage: str, method: Callable[..., Any], request: Any) -> AsyncIterator[Any]:
        """A server-streaming call; retried only while nothing has been received."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeouts[stage]
        attempt = 0
        while True:
            call = method(request, timeout=max(0.01, deadline - loop.time()), metadata=self.metadata())
            received = False
            try:
                async for reply in call:
                    if not received:
                        provenance.note(stage, await call.initial_metadata())
                    received = True
                    yield reply
                await self._count_replica(stage, call)
                return
            except grpc.aio.AioRpcError as err:
                if received or not await self._should_retry(stage, attempt, err, deadline):
                    raise self._failed(stage, err) from None
                attempt += 1
            finally:
                call.cancel()  # no-op when finished; stops the backend when we stop early

    async def _should_retry(self, stage: str, attempt: int, err: grpc.aio.AioRpcError, deadline: float) -> bool:
        """Whether to send a call refused before any reply again (after the wait this decides on)."""
        if not retryable(err):
            return False
        if attempt < self.retries:
            await self._backoff(stage, attempt, err)
            return True
        # Retries spent: one more attempt if the service comes back in time, once.
        return (
            attempt == self.retries
            and err.code() is grpc.StatusCode.UNAVAILABLE
            and await self._wait_until_serving(stage, deadline)
        )

    async def _wait_until_serving(self, stage: str, deadline: float) -> bool:
        """Wait, within ``deadline`` and ``restart_wait_seconds``, for an unreachable service to come back;
        whether it came. Who restarts it (a supervisor, an orchestrator) is not the core's business."""
        wait = min(deadline - asyncio.get_running_loop().time(), self.restart_wait)
        if wait <= 0.05:
            return False
        logger.warning("%s is unreachable: waiting up to %.1f s for it to come back", stage, wait)
        # Back means SERVING: a restarted service listens before its engine is loaded.
        loop = asyncio.get_running_loop()
        until = loop.time() + wait
        while (left := until - loop.time()) > 0:
            health = await check_channel(
                self.channels[stage], self.addresses[stage], timeout=min(left, 2.0), wait_for_ready=True
            )
            if health.serving:
                logger.info("%s is back: sending the call again", stage)
                return True
            await asyncio.sleep(min(0.05, max(0.0, until - loop.time())))
        return False

    async def recognize(
        self, requests: Callable[[], AsyncIterator[asr_pb2.StreamingRecognizeRequest]]
    ) -> AsyncIterator[asr_pb2.StreamingRecognizeResponse]:
        """The asr's streaming recognition of the audio ``requests()`` yields (config first).

        A reloading asr ends its streams between utterances (RESTARTING): the
        rest of the audio goes on in a new stream (``requests()`` again, which
        must continue where the last one stopped) and utterance numbers run on.
        An asr that died (a crash, a kill) is waited for like a refused call,
        within ``asr_timeout``, if it is being brought back; the audio it had
        not answered yet is lost, the stream goes on with what comes next.
        """
        base = 0  # utterances of earlier streams
        restarted = False
        loop = asyncio.get_running_loop()
        while True:
            if restarted:
                await self._ready("asr")
            call = self.asr.StreamingRecognize(requests(), metadata=self.metadata(), wait_for_ready=restarted)
            seen = 0
            try:
                provenance.note("asr", await call.initial_metadata())
                async for reply in call:
                    seen = max(seen, reply.utterance_index + 1)
                    reply.utterance_index += base
                    yield reply
                await self._count_replica("asr", call)
                return
            except grpc.aio.AioRpcError as err:
                if failure_from_error(err).reason == ErrorCode.RESTARTING:
                    logger.info("asr is restarting: continuing on a new stream")
                elif retryable(err) and await self._wait_until_serving("asr", loop.time() + self.timeouts["asr"]):
                    self.metrics.upstream_errors.labels("asr", err.code().name).inc()
                    logger.warning("asr stream broke (%s): continuing on a new stream", err.code().name)
                else:
                    raise self._failed("asr", err) from None
                base += seen
                restarted = True
            finally:
                call.cancel()  # no-op when finished; stops the asr when the caller stops early

    async def _count_replica(self, stage: str, call: Any) -> None:
        """Count a finished call by the replica that answered it (its trailing metadata says which)."""
        for key, value in await call.trailing_metadata() or ():
            if key == REPLICA_KEY and isinstance(value, str) and value:
                self.metrics.upstream_calls.labels(stage, value).inc()
                return

    async def _ready(self, stage: str) -> None:
        try:
            await asyncio.wait_for(self.channels[stage].channel_ready(), self.timeouts[stage])
        except asyncio.TimeoutError:  # not the builtin TimeoutError before 3.11
            raise StageError(stage, grpc.StatusCode.UNAVAILABLE, "did not come back after a restart") from None

    def _failed(self, stage: str, err: grpc.aio.AioRpcError) -> StageError:
        self.metrics.upstream_errors.labels(stage, err.code().name).inc()
        return stage_error(stage, err)

    async def _backoff(self, stage: str, attempt: int, err: grpc.aio.AioRpcError) -> None:
        self.metrics.retries.labels(stage).inc()
        delay = retry_delay(attempt)
        # A first refusal is what a reload looks like; only a repeated one is news.
        level = logging.DEBUG if attempt == 0 else logging.WARNING
        logger.log(level, "%s refused the call (%s), retrying in %d ms", stage, err.code().name, delay * 1000)
        await asyncio.sleep(delay)

    async def health(self, timeout: float = 1.5) -> dict[str, dict[str, str]]:
        """Each stage's health status (SERVING, NOT_SERVING, UNREACHABLE, ...) and address."""

        # wait_for_ready: a service that just came back is reconnected to, not reported down.
        results = await asyncio.gather(
            *(
                check_channel(self.channels[s], self.addresses[s], timeout=timeout, wait_for_ready=True)
                for s in MODEL_SERVICES
            )
        )
        return {s: {"status": r.status, "address": r.address} for s, r in zip(MODEL_SERVICES, results, strict=True)}

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.channels.values()))
