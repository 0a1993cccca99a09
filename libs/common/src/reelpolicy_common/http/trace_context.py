"""The caller's W3C trace context for a request, when tracing is off.

With no exporter, OpenTelemetry's FastAPI instrumentation still builds a request's
span details (route matching, attributes, send wrappers) for spans nobody records, a
large share of a small request's CPU. What the rest of the platform needs from it then
is only the caller's ``traceparent``, so the events a request
causes (outbox headers) continue the caller's trace. This middleware gives exactly
that; with an exporter the full instrumentation is installed instead.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context

from reelpolicy_common.telemetry import context_from_headers

_HEADERS = (b"traceparent", b"tracestate", b"baggage")


class TraceContextMiddleware:
    """ASGI: run each HTTP request in the context its trace headers carry (if any)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers") or ()
            if name in _HEADERS
        }
        if scope["type"] != "http" or not carrier:
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(context_from_headers(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
