"""The notify app for the boundary tests: its settings, running it in process (with
its consumer and worker), and reading its deliveries through the API."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from reelpolicy_common.kafka import ensure_topics
from reelpolicy_notify.config import Settings
from reelpolicy_notify.main import create_app
from service_harness import SEALING_KEYS, SECRET_KEY, add_api_key, eventually, migrate_service


def notify_settings(dsn: str, bootstrap: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": dsn,
        "kafka_bootstrap_servers": bootstrap,
        "kafka_consumer_group": f"notify-{uuid.uuid4().hex[:8]}",
        "reelpolicy_secret_key": SECRET_KEY,
        "notify_sealing_keys": SEALING_KEYS,
        "http_port": 1,
        "log_json": False,
        "consumer_max_attempts": 3,
        "consumer_retry_initial_seconds": 0.01,
        "notify_allow_private_targets": True,
        "notify_retry_schedule": "0,0.2,0.2",
        "notify_retry_jitter": 0.0,
        "notify_worker_max_idle_seconds": 1.0,
    }
    return Settings(**{**values, **overrides})


class RunningNotify:
    def __init__(self, app: Any, dsn: str, bootstrap: str) -> None:
        self.app = app
        self.dsn = dsn
        self.bootstrap = bootstrap

    def client(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://notify",
            headers={"Authorization": f"Bearer {key}"},
        )

    async def key(self, *, enterprise_id: str | None = None) -> str:
        role = "company" if enterprise_id else "operator"
        return await add_api_key(self.dsn, role=role, enterprise_id=enterprise_id)


async def prepare(dsn: str, bootstrap: str) -> None:
    await migrate_service(dsn, "reelpolicy_notify.migrations", "notify")
    await ensure_topics(bootstrap_servers=bootstrap)


@contextlib.asynccontextmanager
async def running_notify(
    dsn: str, bootstrap: str, **overrides: Any
) -> AsyncIterator[RunningNotify]:
    app = create_app(notify_settings(dsn, bootstrap, **overrides))
    async with app.router.lifespan_context(app):
        yield RunningNotify(app, dsn, bootstrap)


async def deliveries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/deliveries", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def settled(client: httpx.AsyncClient, count: int, **params: Any) -> list[dict[str, Any]]:
    """Wait until ``count`` deliveries exist and none is pending or in flight."""

    async def done() -> list[dict[str, Any]] | None:
        items = await deliveries(client, **params)
        finished = [d for d in items if d["status"] in ("succeeded", "failed")]
        return items if len(items) >= count and len(finished) == len(items) else None

    result: list[dict[str, Any]] = await eventually(done, timeout=20, interval=0.1)
    return result
