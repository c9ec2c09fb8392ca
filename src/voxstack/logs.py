"""Logging for both modes, configured once per process from Settings.

prod: one JSON object a line (time, level, service, mode, logger, message,
request id, exception text, plus any ``extra=`` fields).
dev: a human console through rich, every line prefixed with ``dev`` and the
service, tracebacks with local variables; colour only on a terminal.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import IO, Any

from opentelemetry import trace
from rich.console import Console
from rich.logging import RichHandler

from voxstack.config import LogFormat, Settings

# The request id of the call being handled; set by the gRPC interceptor (and the
# core's HTTP middleware) and read by every log line made inside that call.
request_id_var: ContextVar[str | None] = ContextVar("voxstack_request_id", default=None)

# LogRecord attributes that are not ``extra=`` fields.
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_CONTEXT_ATTRS = frozenset({"service", "mode", "request_id"})
# Libraries that are chatty at DEBUG and say nothing a voxstack developer needs.
# Libraries whose DEBUG and INFO lines are noise (websockets logs every frame at DEBUG).
_QUIET_LOGGERS = (
    "asyncio", "grpc._cython", "watchfiles.main", "httpcore", "urllib3", "faster_whisper", "websockets",
)  # fmt: skip


#: A credential in a query string (a WebSocket token, a key): servers log request paths whole.
SECRET_IN_QUERY = re.compile(r"([?&](?:token|api_key|key|access_token)=)[^&\s\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with credentials in query strings replaced."""
    return SECRET_IN_QUERY.sub(r"\1[redacted]", text) if "=" in text else text


class ContextFilter(logging.Filter):
    """Stamps each record with the service, the mode and the current request id; redacts credentials."""

    def __init__(self, service: str, mode: str) -> None:
        super().__init__()
        self.service = service
        self.mode = mode

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        record.service = self.service
        record.mode = self.mode
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        span = trace.get_current_span().get_span_context()
        if span.is_valid:  # tracing is on: the line can be found from its trace, and back
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        return True


class AudioFrameFilter(logging.Filter):
    """Drops websockets' DEBUG line for every binary frame: uvicorn hands websockets its own logger
    (``uvicorn.error``), so the quiet ``websockets`` logger does not cover them, and a conversation's
    audio made most of a dev log's lines (and of the core's CPU)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG or not record.args or not isinstance(record.args, tuple):
            return True
        opcode = getattr(record.args[0], "opcode", None)
        return getattr(opcode, "name", "") not in ("BINARY", "CONT")


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with plain (no locals) exception text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": getattr(record, "service", None),
            "mode": getattr(record, "mode", None),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in _CONTEXT_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """The message part of a console line: ``[dev asr] text  rid=...``."""

    # RichHandler calls formatMessage directly for records with a traceback.
    def formatMessage(self, record: logging.LogRecord) -> str:
        prefix = f"[{getattr(record, 'mode', '?')} {getattr(record, 'service', '?')}]"
        rid = getattr(record, "request_id", None)
        suffix = f"  rid={rid}" if rid else ""
        trace_id = getattr(record, "trace_id", None)
        suffix += f" trace={trace_id}" if trace_id else ""
        return f"{prefix} {record.getMessage()}{suffix}"


def configure_logging(settings: Settings, service: str, stream: IO[str] | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one for this process; return it.

    Call it once at process start (child processes call it again: handlers do
    not cross ``exec``).
    """
    out = stream if stream is not None else sys.stderr
    handler: logging.Handler
    if settings.log_format is LogFormat.JSON:
        handler = logging.StreamHandler(out)
        handler.setFormatter(JsonFormatter())
    else:
        is_terminal = out.isatty() if hasattr(out, "isatty") else False
        console = Console(
            file=out,
            force_terminal=None if is_terminal else False,
            # Off a terminal rich would wrap at 80 columns; keep lines whole.
            width=None if is_terminal else 200,
            soft_wrap=not is_terminal,
        )
        handler = RichHandler(
            console=console,
            rich_tracebacks=True,
            tracebacks_show_locals=settings.traceback_locals,
            show_path=False,
            markup=False,
            log_time_format="%H:%M:%S.%f",
        )
        handler.setFormatter(ConsoleFormatter())
    handler.addFilter(ContextFilter(service, settings.mode.value))

    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    uvicorn = logging.getLogger("uvicorn.error")
    for frames in [f for f in uvicorn.filters if isinstance(f, AudioFrameFilter)]:
        uvicorn.removeFilter(frames)
    uvicorn.addFilter(AudioFrameFilter())
    logging.captureWarnings(True)
    return handler
