"""An OTLP trace receiver on loopback (a real gRPC TraceService), for tests and benchmarks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span exported to it, with the name of the service that sent it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[tuple[str, Span]] = []

    def Export(self, request: Any, context: Any) -> trace_service_pb2.ExportTraceServiceResponse:
        with self.lock:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    self.spans += [(attributes.get("service.name", "?"), s) for s in scope_spans.spans]
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: bytes) -> list[tuple[str, Span]]:
        with self.lock:
            return [(service, s) for service, s in self.spans if s.trace_id == trace_id]

    def named(self, name: str) -> list[tuple[str, Span]]:
        with self.lock:
            return [(service, s) for service, s in self.spans if s.name == name]


@contextmanager
def receiving() -> Iterator[tuple[Receiver, int]]:
    """A receiver serving on a free loopback port until the block ends: (receiver, port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    receiver = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield receiver, port
    finally:
        server.stop(0)


def exporting_env(port: int) -> dict[str, str]:
    """The standard OTEL_* variables that send a process's spans to the receiver on ``port``, promptly."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
