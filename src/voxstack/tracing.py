"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables turn it on.

``OTEL_TRACES_EXPORTER=otlp`` (OTLP over gRPC to ``OTEL_EXPORTER_OTLP_ENDPOINT``,
with the SDK's other ``OTEL_*`` settings) or ``console`` (spans printed, for
dev), or setting an OTLP endpoint, turns it on; ``OTEL_SDK_DISABLED=true`` or
``OTEL_TRACES_EXPORTER=none`` keeps it off. Each process names itself
``voxstack-<service>``. Spans cross processes as W3C ``traceparent`` in gRPC
metadata (the official gRPC instrumentation), and from the asr's utterance to
the core's turn in ``StreamingRecognizeResponse.trace_parent``.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from voxstack.errors import StartupError

TRACER = "voxstack"
_PROPAGATOR = TraceContextTextMapPropagator()


def tracing_requested(env: Mapping[str, str] = os.environ) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(service: str, mode: str, env: Mapping[str, str] = os.environ) -> bool:
    """Install a tracer provider for this process when the environment asks for one; whether it did."""
    if not tracing_requested(env):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    resource = Resource.create(
        {"service.name": f"voxstack-{service}", "service.namespace": "voxstack", "deployment.environment": mode}
    )
    provider = TracerProvider(resource=resource)
    for name in [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",") if n.strip()]:
        if name == "otlp":
            protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
            if protocol != "grpc":
                raise StartupError(f"OTLP protocol {protocol!r}: voxstack exports traces over grpc only")
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        else:
            raise StartupError(f"OTEL_TRACES_EXPORTER={name!r}: voxstack knows otlp, console and none")
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # flushes the spans not yet exported
    return True


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER)


def enabled() -> bool:
    """Whether this process records spans (a provider was installed)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def trace_parent(span: trace.Span) -> str:
    """``span`` as a W3C traceparent header value ("" for a span that records nothing)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def from_trace_parent(value: str) -> context.Context:
    """The context a traceparent value continues (an empty one for "")."""
    return _PROPAGATOR.extract({"traceparent": value}) if value else context.Context()


def server_interceptors() -> list[Any]:
    """The gRPC server interceptors that continue callers' traces (none when tracing is off)."""
    if not enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor()]


def client_interceptors() -> list[Any]:
    """The gRPC client interceptors that send the current trace along (none when tracing is off)."""
    if not enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors())
