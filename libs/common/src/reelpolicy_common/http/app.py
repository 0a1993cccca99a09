"""The FastAPI app every service builds: its routers plus health, AsyncAPI and metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from faststream.specification import AsyncAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_fastapi_instrumentator import Instrumentator

from reelpolicy_common.http.authenticate import AuthenticateFirst
from reelpolicy_common.http.body_limit import BodyLimit
from reelpolicy_common.http.concrete_paths import ConcretePathsFirst
from reelpolicy_common.http.errors import install_error_handlers
from reelpolicy_common.http.problems import document_problems
from reelpolicy_common.http.rate_limit import RateLimiter
from reelpolicy_common.http.trace_context import TraceContextMiddleware
from reelpolicy_common.runtime import ServiceRuntime
from reelpolicy_common.settings import SecretKeySettings
from reelpolicy_common.telemetry import tracing_enabled

PUBLIC_PATHS = frozenset(
    {"/healthz", "/metrics", "/docs", "/redoc", "/openapi.json", "/asyncapi", "/asyncapi.json"}
)


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    routers: list[APIRouter],
    version: str = "0.1.0",
    body_limits: Mapping[str, int] | None = None,
    keyless_paths: frozenset[str] = frozenset(),
) -> FastAPI:
    """Build the service's app; ``runtime.lifespan`` starts and stops its I/O.

    Request bodies are limited to ``MAX_BODY_BYTES`` unless ``body_limits`` gives
    their path prefix (e.g. ``/v1/import``) a limit of its own (see
    :mod:`~reelpolicy_common.http.body_limit`). A non-public path needs a valid API
    key before anything reads its body (:mod:`~reelpolicy_common.http.authenticate`),
    but for ``keyless_paths``: routes for callers without a key, which check the
    credential they are given themselves (registry's sign-in link redeem, notify's signed
    unsubscribe links). An entry ending in ``/`` covers every path under it.
    """
    app = FastAPI(title=title, description=description, version=version, lifespan=runtime.lifespan)
    app.state.runtime = runtime
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)
    settings = runtime.settings
    app.add_middleware(ConcretePathsFirst, routes=app.router.routes)
    # added first, so it runs inside the authentication: a caller without a key is
    # answered 401 whatever the size of what it sends
    app.add_middleware(BodyLimit, default=settings.max_body_bytes, limits=body_limits or {})
    if isinstance(settings, SecretKeySettings):  # a service that checks API keys
        limiter = None
        if settings.rate_limit_per_minute > 0:
            limiter = RateLimiter(
                per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst
            )
        app.add_middleware(
            AuthenticateFirst,
            runtime=runtime,
            secret_key=settings.reelpolicy_secret_key.get_secret_value(),
            public_paths=PUBLIC_PATHS | {p for p in keyless_paths if not p.endswith("/")},
            limiter=limiter,
            limit_operators=settings.rate_limit_operators,
            public_prefixes=tuple(sorted(p for p in keyless_paths if p.endswith("/"))),
        )

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Database and broker reachable, background tasks and consumers running",
    )
    async def healthz() -> JSONResponse:
        """503 names each problem: ``database``, ``broker``, a background task (e.g.
        ``outbox-relay``) that is down, restarting or overdue with its heartbeat, or a
        ``consumer:<name>`` whose consume task stopped; each with its state in a few
        fixed words, never an error's text (which names hosts and users): the service
        logs that."""
        problems = await runtime.check_health()
        if problems:
            return JSONResponse({"status": "unhealthy", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ok"})

    def asyncapi_document() -> dict[str, Any]:
        spec = AsyncAPI(runtime.broker, title=title, version=version, description=description)
        document: dict[str, Any] = spec.to_specification().to_jsonable()
        return document

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI document (events)")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(asyncapi_document())

    @app.get("/asyncapi", tags=["operations"], include_in_schema=False)
    async def asyncapi_html(request: Request) -> HTMLResponse:
        from faststream.specification.asyncapi.site import get_asyncapi_html

        return HTMLResponse(
            get_asyncapi_html(AsyncAPI(runtime.broker, title=title).to_specification())
        )

    if tracing_enabled(otlp_endpoint=runtime.settings.otel_exporter_otlp_endpoint):
        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,metrics")
    else:  # no spans to record: only carry the caller's trace context (see the module)
        app.add_middleware(TraceContextMiddleware)
    Instrumentator(excluded_handlers=["/metrics", "/healthz"]).instrument(app).expose(
        app, include_in_schema=False
    )
    _publish_problems(app)
    return app


def _publish_problems(app: FastAPI) -> None:
    """The OpenAPI document states the problem schema for every error (see
    :func:`document_problems`), built once like FastAPI's own."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document_problems(document, public_paths=PUBLIC_PATHS)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
