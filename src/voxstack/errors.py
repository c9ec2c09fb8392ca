"""Typed errors with stable codes, turned into gRPC or HTTP statuses at the edge.

Engines and servicers raise these; ``rpc_status`` maps them to gRPC statuses
(for the service base and its clients) and the core to HTTP statuses. This
module imports no grpc, so code that only fetches models or reads settings
does not need the services' dependencies. ``reason`` is the stable, machine-readable
code a client can branch on; the message is for people.
"""

from __future__ import annotations

from typing import ClassVar

from voxstack.codes import ErrorCode

#: A process's exit status when a StartupError stopped it (sysexits' EX_CONFIG): starting it
#: again cannot help until its operator changes something, so `voxstack up` stops instead.
EXIT_STARTUP = 78


class StartupError(Exception):
    """A service cannot start for a reason its operator can fix (a missing model, a bad
    path, a setting). Logged as one line that says what to do, without a traceback.

    ``lasting``: starting again cannot help until someone changes something (the process
    exits with EXIT_STARTUP); not lasting (a server it needs is down) exits with 1, to be
    restarted.
    """

    def __init__(self, message: str, *, lasting: bool = True) -> None:
        super().__init__(message)
        self.lasting = lasting

    @property
    def exit_code(self) -> int:
        return EXIT_STARTUP if self.lasting else 1


class VoxError(Exception):
    """Base of every error voxstack reports to a caller on purpose."""

    http_status: ClassVar[int] = 500
    default_reason: ClassVar[str] = ErrorCode.INTERNAL

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason

    def __str__(self) -> str:
        return self.message


class InvalidInput(VoxError):
    """The request is malformed: bad audio, empty text, unknown voice, ..."""

    http_status = 400
    default_reason = ErrorCode.INVALID_ARGUMENT


class TooLarge(VoxError):
    """The request is over a size, length or queue limit."""

    http_status = 413
    default_reason = ErrorCode.RESOURCE_EXHAUSTED


class Busy(TooLarge):
    """Too many requests from this caller, or for this service, right now: try again soon."""

    http_status = 429
    default_reason = ErrorCode.RATE_LIMITED


class TimedOut(VoxError):
    """The caller was too slow: a request body that stopped arriving."""

    http_status = 408
    default_reason = ErrorCode.REQUEST_TIMEOUT


class NotReady(VoxError):
    """The service cannot serve yet (engine loading) or any more (shutting down)."""

    http_status = 503
    default_reason = ErrorCode.NOT_READY


class PreconditionFailed(VoxError):
    """The request is valid but the system is not in a state to run it."""

    http_status = 409
    default_reason = ErrorCode.FAILED_PRECONDITION


class DeadlineExceeded(VoxError):
    """The work did not finish within its deadline."""

    http_status = 504
    default_reason = ErrorCode.DEADLINE_EXCEEDED


class InternalError(VoxError):
    """Something broke that the caller cannot fix."""
