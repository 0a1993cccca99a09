"""Tracing off: a request still runs in its caller's trace context (for the outbox)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from reelpolicy_common.http.trace_context import TraceContextMiddleware
from reelpolicy_common.telemetry import current_trace_headers

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def call(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    seen: dict[str, str] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(current_trace_headers())

    await TraceContextMiddleware(app)({"type": "http", "headers": headers}, None, None)
    return seen


async def test_the_callers_traceparent_is_the_requests_context() -> None:
    seen = await call([(b"content-type", b"application/json"), (b"traceparent", PARENT.encode())])
    assert seen["traceparent"].split("-")[1] == TRACE_ID
    # and only for the request: the context is restored after it
    assert trace.get_current_span().get_span_context().trace_id == 0


async def test_a_request_without_trace_headers_gets_no_context() -> None:
    assert "traceparent" not in await call([(b"content-type", b"application/json")])
