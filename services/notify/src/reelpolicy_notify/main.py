"""The notify ASGI app: ``uvicorn --factory reelpolicy_notify.main:create_app``.

The composition root: bootstrap, then the entrypoints (the Kafka consumer, the
delivery worker and deadline scans, the HTTP routers) on the service object.
"""

from __future__ import annotations

from fastapi import FastAPI

from reelpolicy_common.http import create_service_app
from reelpolicy_notify.adapters.delivery_gauges import watch_delivery_gauges
from reelpolicy_notify.bootstrap import Notify, bootstrap
from reelpolicy_notify.config import Settings
from reelpolicy_notify.entrypoints.consumers import register_consumers
from reelpolicy_notify.entrypoints.http import routers
from reelpolicy_notify.entrypoints.worker import run_deadline_scans, run_worker


def create_app(
    settings: Settings | None = None, *, notify: Notify | None = None, worker: bool = True
) -> FastAPI:
    """The app of ``notify`` (bootstrapped from ``settings`` unless given); ``worker``
    False leaves out the delivery worker, the deadline scans and the delivery gauges
    (tests run their own)."""
    notify = notify or bootstrap(settings)
    register_consumers(notify)
    if worker:
        notify.runtime.add_background(lambda: run_worker(notify), name="notify-worker")
        notify.runtime.add_background(
            lambda: run_deadline_scans(notify), name="notify-deadline-scans"
        )
        notify.runtime.add_background(
            lambda: watch_delivery_gauges(notify.runtime.pool), name="notify-gauges"
        )
    app = create_service_app(
        notify.runtime,
        title="reelpolicy notify",
        description="Subscriptions and signed alert delivery (webhooks, email).",
        routers=routers,
        keyless_paths=frozenset(
            {"/unsubscribe/"}
        ),  # the signed token in the path is the credential
    )
    app.state.notify = notify
    return app
