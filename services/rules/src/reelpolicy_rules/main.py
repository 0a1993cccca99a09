"""The rules ASGI app: ``uvicorn --factory reelpolicy_rules.main:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from reelpolicy_common.http import create_service_app
from reelpolicy_rules.bootstrap import Rules, bootstrap
from reelpolicy_rules.config import Settings


def create_app(settings: Settings | None = None, *, rules: Rules | None = None) -> FastAPI:
    from reelpolicy_rules.entrypoints.http import router

    rules = rules or bootstrap(settings)
    app = create_service_app(
        rules.runtime,
        title="reelpolicy rules",
        description="Eligibility projection and recalculation; publishes eligibility changes.",
        routers=[router],
    )
    app.state.rules = rules
    return app
