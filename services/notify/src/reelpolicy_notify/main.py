"""The notify ASGI app: ``uvicorn --factory reelpolicy_notify.main:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from reelpolicy_common.http import create_service_app
from reelpolicy_notify.bootstrap import Notify, bootstrap
from reelpolicy_notify.config import Settings
from reelpolicy_notify.entrypoints.http import routers


def create_app(settings: Settings | None = None, *, notify: Notify | None = None) -> FastAPI:
    notify = notify or bootstrap(settings)
    app = create_service_app(
        notify.runtime,
        title="reelpolicy notify",
        description="Subscriptions and signed alert delivery (webhooks, email).",
        routers=routers,
    )
    app.state.notify = notify
    return app
