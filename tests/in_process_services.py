"""The four services in this test process, each with its own fresh database.

All share the session's embedded broker; each app runs its real lifespan (pool,
consumers, outbox relay). Used where one process must see everything (the trace
test's in-memory exporter, the access-control matrix).
"""

from __future__ import annotations

import contextlib
import importlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from stdnum.cn import uscc

from reelpolicy_common.db.pool import connect
from reelpolicy_devstack.servers import database_uri, ensure_database
from service_harness import add_api_key, migrate_service, settings_for

SERVICE_NAMES = ("registry", "ingest", "rules", "notify")


@dataclass
class InProcessService:
    name: str
    app: Any
    dsn: str
    client: httpx.AsyncClient
    """Carries an operator key."""

    def as_key(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=f"http://{self.name}",
            headers={"Authorization": f"Bearer {key}"},
        )


async def _start(
    stack: contextlib.AsyncExitStack, name: str, admin_uri: str, bootstrap: str
) -> InProcessService:
    database = f"inproc_{name}_{uuid.uuid4().hex[:8]}"
    await ensure_database(admin_uri, database)
    dsn = database_uri(admin_uri, database)
    await migrate_service(dsn, f"reelpolicy_{name}.migrations", name)
    config = importlib.import_module(f"reelpolicy_{name}.config")
    main = importlib.import_module(f"reelpolicy_{name}.main")
    extra: dict[str, Any] = {"notify_allow_private_targets": True} if name == "notify" else {}
    app = main.create_app(
        settings_for(config.Settings, database_url=dsn, bootstrap_servers=bootstrap, **extra)
    )
    await stack.enter_async_context(app.router.lifespan_context(app))
    service = InProcessService(name, app, dsn, httpx.AsyncClient())
    service.client = await stack.enter_async_context(service.as_key(await add_api_key(dsn)))
    return service


@contextlib.asynccontextmanager
async def four_services(
    admin_uri: str, bootstrap: str
) -> AsyncIterator[dict[str, InProcessService]]:
    async with contextlib.AsyncExitStack() as stack:
        yield {name: await _start(stack, name, admin_uri, bootstrap) for name in SERVICE_NAMES}


@contextlib.asynccontextmanager
async def one_service(name: str, admin_uri: str, bootstrap: str) -> AsyncIterator[InProcessService]:
    """One of the four services in this process (its own fresh database)."""
    async with contextlib.AsyncExitStack() as stack:
        yield await _start(stack, name, admin_uri, bootstrap)


async def add_enterprise_and_production(
    registry: httpx.AsyncClient, *, region: str, title: str
) -> tuple[str, str]:
    """A production company in ``region`` and one approved production of it, through the
    registry's API (operator key): their ids."""
    body = f"91{region}{uuid.uuid4().int % 10**9:09d}"
    enterprise = await registry.post(
        "/v1/enterprises",
        json={
            "name": f"{title}短剧",
            "credit_code": body + uscc.calc_check_digit(body),
            "region_code": region,
            "kind": "production_company",
        },
    )
    assert enterprise.status_code == 201, enterprise.text
    enterprise_id: str = enterprise.json()["id"]
    production = await registry.post(
        "/v1/productions",
        json={
            "enterprise_id": enterprise_id,
            "title": title,
            "region_code": region,
            "content_status": "approved",
        },
    )
    assert production.status_code == 201, production.text
    production_id: str = production.json()["id"]
    return enterprise_id, production_id


async def knows_a_production(service: InProcessService) -> bool:
    """Whether ``service`` (rules, notify) has a production in its projection."""
    conn = await connect(service.dsn)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM productions"))
    finally:
        await conn.close()


def region_policy(policy_id: str, *, region: str, title_zh: str, title_en: str) -> dict[str, Any]:
    """A policy document rewarding every production in ``region`` (up to 1,000 CNY)."""
    return {
        "id": policy_id,
        "title": {"zh": title_zh, "en": title_en},
        "issuer": {"name": "Yangpu", "level": "district", "region_code": region},
        "sources": [{"fact": "F-YP-05"}],
        "effective": {"from": "2024-06-25"},
        "subject": "production",
        "criteria": {"field": "production.region_code", "op": "within", "value": [region]},
        "benefits": [{"id": "r", "kind": "reward", "basis": "up_to", "max_amount_cny": 1000}],
    }
