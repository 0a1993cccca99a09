"""The ingest ASGI app: ``uvicorn --factory reelpolicy_ingest.main:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from reelpolicy_common.http import create_service_app
from reelpolicy_ingest.bootstrap import Ingest, bootstrap
from reelpolicy_ingest.config import Settings


def create_app(settings: Settings | None = None, *, ingest: Ingest | None = None) -> FastAPI:
    from reelpolicy_ingest.entrypoints.http import router

    ingest = ingest or bootstrap(settings)
    app = create_service_app(
        ingest.runtime,
        title="reelpolicy ingest",
        description="Validates and versions policy documents; publishes policy events.",
        routers=[router],
        body_limits={router.prefix: ingest.settings.max_document_bytes},
    )
    app.state.ingest = ingest
    return app
