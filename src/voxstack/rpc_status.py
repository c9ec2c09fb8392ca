"""Errors to gRPC statuses and back.

A failed call carries a short message, plus rich status details
(``grpc-status-details-bin``): ``google.rpc.ErrorInfo`` with the error's stable
reason always, and ``google.rpc.DebugInfo`` with the traceback only when error
detail is on (dev mode).
"""

from __future__ import annotations

import re
import traceback
import uuid
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from voxstack.codes import ErrorCode
from voxstack.errors import (
    DeadlineExceeded,
    InvalidInput,
    NotReady,
    PreconditionFailed,
    TimedOut,
    TooLarge,
    VoxError,
)

ERROR_DOMAIN = "voxstack"
REQUEST_ID_KEY = "x-request-id"
#: Trailing metadata naming the replica that answered (``HOSTNAME/HOST:PORT``): how a balancing client sees the spread.
REPLICA_KEY = "voxstack-replica"
# What a caller's request id may hold: it goes into logs and gRPC metadata as it is.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_DETAILS_KEY = "grpc-status-details-bin"
# Each error kind's status; a subclass takes its nearest listed base's.
GRPC_STATUS: dict[type[VoxError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    NotReady: grpc.StatusCode.UNAVAILABLE,
    PreconditionFailed: grpc.StatusCode.FAILED_PRECONDITION,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    TimedOut: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def grpc_status(exc: VoxError) -> grpc.StatusCode:
    """The gRPC status of a typed error (INTERNAL for kinds not listed)."""
    return next((GRPC_STATUS[k] for k in type(exc).__mro__ if k in GRPC_STATUS), grpc.StatusCode.INTERNAL)


@dataclass(frozen=True)
class StatusReply:
    """What the server sends for a failed call."""

    code: grpc.StatusCode
    message: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def clean_request_id(value: str | None) -> str:
    """The caller's request id if it is safe to log and to pass on as metadata, else a new one."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def status_for(exc: BaseException, *, request_id: str, error_detail: bool) -> StatusReply:
    """The status a caller gets for ``exc``."""
    if isinstance(exc, VoxError):
        code, reason, message = grpc_status(exc), exc.reason, exc.message
    else:
        code, reason = grpc.StatusCode.INTERNAL, ErrorCode.INTERNAL
        # Unexpected errors say nothing of our internals in prod.
        message = f"{type(exc).__name__}: {exc}" if error_detail else f"internal error (request id {request_id})"
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata={"request_id": request_id})
    status.details.add().Pack(info)
    if error_detail:
        debug = error_details_pb2.DebugInfo(
            stack_entries=traceback.format_exception(type(exc), exc, exc.__traceback__),
            detail=f"{type(exc).__name__}: {exc}",
        )
        status.details.add().Pack(debug)
    metadata = ((_DETAILS_KEY, status.SerializeToString()), (REQUEST_ID_KEY, request_id))
    return StatusReply(code, message, metadata)


@dataclass(frozen=True)
class RpcFailure:
    """A failed call as a client sees it."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    request_id: str = ""
    traceback: str = ""

    def describe(self) -> str:
        """One readable paragraph: status, message, then the server's traceback if sent."""
        text = f"{self.code.name}: {self.message}"
        if self.reason and self.reason != self.code.name:
            text += f" [{self.reason}]"
        if self.traceback:
            text += "\n--- server traceback ---\n" + self.traceback.rstrip()
        return text


def failure_from_error(err: grpc.RpcError) -> RpcFailure:
    """Parse a failed call's status (sync or aio call objects that are finished)."""
    code = err.code()
    message = err.details() or ""
    reason = request_id = tb = ""
    status = None
    try:
        status = rpc_status.from_call(err)
    except (ValueError, AttributeError):
        status = None  # no or inconsistent rich details: the plain status still says enough
    if status is not None:
        for any_detail in status.details:
            if any_detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                any_detail.Unpack(info)
                reason = info.reason
                request_id = info.metadata.get("request_id", "")
            elif any_detail.Is(error_details_pb2.DebugInfo.DESCRIPTOR):
                debug = error_details_pb2.DebugInfo()
                any_detail.Unpack(debug)
                tb = "".join(debug.stack_entries)
    return RpcFailure(code=code, message=message, reason=reason, request_id=request_id, traceback=tb)
