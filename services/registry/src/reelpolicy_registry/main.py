"""The registry ASGI app: ``uvicorn --factory reelpolicy_registry.main:create_app``.

The composition root: it bootstraps the registry (unless given one) and mounts the
HTTP routers (one of them open to callers without a key: redeeming a sign-in link).
The registry consumes no topic, so there are no consumers to register.
"""

from __future__ import annotations

from fastapi import FastAPI

from reelpolicy_common.http import create_service_app
from reelpolicy_registry.bootstrap import Registry, bootstrap
from reelpolicy_registry.config import Settings
from reelpolicy_registry.entrypoints.http import imports, portal_links, routers


def create_app(settings: Settings | None = None, *, registry: Registry | None = None) -> FastAPI:
    registry = registry or bootstrap(settings)
    app = create_service_app(
        registry.runtime,
        title="reelpolicy registry",
        description="Enterprises, productions and API keys; publishes registry change events.",
        routers=routers,
        body_limits={imports.router.prefix: registry.settings.max_import_bytes},
        keyless_paths=frozenset({portal_links.REDEEM_PATH}),
    )
    app.state.registry = registry
    return app
