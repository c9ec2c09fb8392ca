"""Which refusals the core's clients retry, and how stage errors map to HTTP."""

from __future__ import annotations

import grpc
import pytest

from voxstack.config import load_settings
from voxstack.core.clients import TRANSPORT_INTERNAL, StageError, retry_delay, retryable


def error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, "connection refused", True),
        (grpc.StatusCode.CANCELLED, "CANCELLED", True),
        (grpc.StatusCode.INTERNAL, TRANSPORT_INTERNAL, True),
        (grpc.StatusCode.INTERNAL, "internal error (request id 1)", False),
        (grpc.StatusCode.INVALID_ARGUMENT, "bad", False),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", False),
    ],
)
def test_retryable(code, details, expected) -> None:
    assert retryable(error(code, details)) is expected


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        (grpc.StatusCode.INTERNAL, 502),
    ],
)
def test_stage_errors_name_the_stage(code, status) -> None:
    err = StageError("llm", code, "details")
    assert err.http_status == status
    assert err.stage == "llm" and str(err) == f"llm failed: {code.name}: details"


def test_a_refused_call_is_retried_at_once_then_with_backoff() -> None:
    # A reload's refusal is over by the time the caller sees it; a service that
    # is really down still gets a growing wait, 0.375 s in all by default.
    delays = [retry_delay(a) for a in range(load_settings().core.retries)]
    assert delays == pytest.approx([0.0, 0.025, 0.05, 0.1, 0.2])


def test_a_call_to_a_dead_service_waits_only_as_long_as_restart_wait_seconds_says(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The core's client knows nothing of who runs the services: with the setting at its default (0, as
    outside `voxstack up`/`dev`), a service that is down fails the call after the retries, unwaited."""
    import asyncio

    from voxstack.core.clients import Backends
    from voxstack.testing.processes import free_port
    from voxstack.v1 import tts_pb2

    async def call(wait: float) -> StageError:
        settings = load_settings(tts={"port": free_port()}, core={"restart_wait_seconds": wait})
        backends = Backends(settings)  # nothing listens at the tts's address
        try:
            await backends.unary("tts", backends.tts.ListVoices, tts_pb2.ListVoicesRequest())
        except StageError as exc:
            return exc
        finally:
            await backends.close()
        raise AssertionError("a call to nothing was answered")

    with caplog.at_level("WARNING", logger="voxstack.core.clients"):
        assert asyncio.run(call(0)).code is grpc.StatusCode.UNAVAILABLE
        assert "waiting up to" not in caplog.text
        assert asyncio.run(call(0.5)).code is grpc.StatusCode.UNAVAILABLE
        assert "tts is unreachable: waiting up to 0.5 s for it to come back" in caplog.text
