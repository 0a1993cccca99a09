"""The ingest ASGI app: ``uvicorn --factory reelpolicy_ingest.main:create_app``.

The composition root: bootstrap the service, register its consumers, mount its routers.
"""

from __future__ import annotations

from fastapi import FastAPI

from reelpolicy_common.http import create_service_app
from reelpolicy_ingest.bootstrap import Ingest, bootstrap
from reelpolicy_ingest.config import Settings
from reelpolicy_ingest.entrypoints.consumers import register_consumers
from reelpolicy_ingest.entrypoints.http import policies, routers


def create_app(settings: Settings | None = None, *, ingest: Ingest | None = None) -> FastAPI:
    ingest = ingest or bootstrap(settings)
    register_consumers(ingest)
    app = create_service_app(
        ingest.runtime,
        title="reelpolicy ingest",
        description="Validates and versions policy documents; publishes policy events.",
        routers=routers,
        body_limits={policies.router.prefix: ingest.settings.max_document_bytes},
    )
    app.state.ingest = ingest
    return app
