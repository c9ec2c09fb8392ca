"""Typed errors with stable codes, turned into gRPC or HTTP statuses at the edge.

Engines and servicers raise these; the service base maps them to a gRPC status
(and the core to an HTTP status). ``reason`` is the stable, machine-readable
code a client can branch on; the message is for people.
"""

from __future__ import annotations

from typing import ClassVar

import grpc


class StartupError(Exception):
    """A service cannot start for a reason its operator can fix (a missing model, a bad
    path). Logged as one line that says what to do, without a traceback."""


class VoxError(Exception):
    """Base of every error voxstack reports to a caller on purpose."""

    grpc_status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    http_status: ClassVar[int] = 500
    default_reason: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason

    def __str__(self) -> str:
        return self.message


class InvalidInput(VoxError):
    """The request is malformed: bad audio, empty text, unknown voice, ..."""

    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400
    default_reason = "INVALID_ARGUMENT"


class TooLarge(VoxError):
    """The request is over a size, length or queue limit."""

    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 413
    default_reason = "RESOURCE_EXHAUSTED"


class NotReady(VoxError):
    """The service cannot serve yet (engine loading) or any more (shutting down)."""

    grpc_status = grpc.StatusCode.UNAVAILABLE
    http_status = 503
    default_reason = "NOT_READY"


class PreconditionFailed(VoxError):
    """The request is valid but the system is not in a state to run it."""

    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 409
    default_reason = "FAILED_PRECONDITION"


class DeadlineExceeded(VoxError):
    """The work did not finish within its deadline."""

    grpc_status = grpc.StatusCode.DEADLINE_EXCEEDED
    http_status = 504
    default_reason = "DEADLINE_EXCEEDED"


class InternalError(VoxError):
    """Something broke that the caller cannot fix."""
