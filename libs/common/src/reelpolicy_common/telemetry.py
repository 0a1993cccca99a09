"""OpenTelemetry: one tracer provider per process, W3C context in Kafka headers.

Export goes over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and is silent
otherwise. Tests install their own provider with an in-memory exporter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

KafkaHeaders = list[tuple[str, bytes]]


def configure_tracing(*, service: str, otlp_endpoint: str | None) -> TracerProvider | None:
    """Install (once) the process's tracer provider when there is somewhere to export.

    Without an endpoint the API's no-op provider stays: spans cost nothing, and an
    incoming ``traceparent`` still propagates through the outbox and Kafka headers.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    if not otlp_endpoint:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": f"reelpolicy-{service}"}))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return provider


def tracing_enabled(*, otlp_endpoint: str | None) -> bool:
    """Whether spans are recorded: an exporter is configured, or a recording provider is
    installed already (tests install their own before building apps)."""
    return bool(otlp_endpoint) or isinstance(trace.get_tracer_provider(), TracerProvider)


def current_trace_headers() -> dict[str, str]:
    """The current context as W3C headers (``traceparent``, ``tracestate``)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(dict(headers))


def decode_kafka_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {k: (v or b"").decode(errors="replace") for k, v in (headers or ())}


def encode_kafka_headers(headers: Mapping[str, str]) -> KafkaHeaders:
    return [(k, v.encode()) for k, v in headers.items()]
