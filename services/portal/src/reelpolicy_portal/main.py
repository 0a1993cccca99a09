"""The portal ASGI app: ``uvicorn --factory reelpolicy_portal.main:create_app``.

The composition root: bootstrap, then the pages, the static assets (all served here:
no CDN), health and metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_fastapi_instrumentator import Instrumentator

from reelpolicy_portal.bootstrap import Portal, bootstrap
from reelpolicy_portal.config import Settings
from reelpolicy_portal.entrypoints.http import routers
from reelpolicy_portal.entrypoints.http.errors import install_page_errors
from reelpolicy_portal.entrypoints.http.rendering import PACKAGE

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none';"
    " object-src 'none'"
)


def create_app(
    settings: Settings | None = None,
    *,
    portal: Portal | None = None,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    portal = portal or bootstrap(settings, transports=transports)
    app = FastAPI(
        title="reelpolicy portal",
        description="The companies' pages: eligibility, missing information, policies.",
        lifespan=portal.lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.portal = portal
    for router in routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")
    install_page_errors(app)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")  # a link's token never leaks
        if not request.url.path.startswith("/static/"):
            headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        problems = await portal.check_health()
        if problems:
            return JSONResponse({"status": "unhealthy", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ok"})

    Instrumentator(excluded_handlers=["/metrics", "/healthz", "/static"]).instrument(app).expose(
        app, include_in_schema=False
    )
    return app
