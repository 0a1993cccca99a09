"""A running registry app for boundary tests, and helpers to look at its tables."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_datagen.registry_rows import credit_code
from reelpolicy_registry.config import Settings
from reelpolicy_registry.main import create_app
from service_harness import add_api_key, migrate_service, settings_for

_rng = random.Random(42)


def new_enterprise(region: str = "310110", **overrides: Any) -> dict[str, Any]:
    return {
        "name": f"Star Media {_rng.randrange(10**6)}",
        "credit_code": credit_code(_rng, region),
        "region_code": region,
        "kind": "production_company",
        "tags": ["micro_drama"],
        "established_on": "2021-03-04",
        **overrides,
    }


class RegistryClient:
    def __init__(self, app: Any, dsn: str, bootstrap: str, operator_key: str) -> None:
        self.app = app
        self.dsn = dsn
        self.bootstrap = bootstrap
        self.client = self.as_key(operator_key)

    def as_key(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://registry",
            headers={"Authorization": f"Bearer {key}"},
        )

    async def company_client(self, enterprise_id: str) -> httpx.AsyncClient:
        return self.as_key(await add_api_key(self.dsn, role="company", enterprise_id=enterprise_id))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def snapshot(self) -> tuple[Any, ...]:
        """Everything stored: both tables' rows and the outbox (for 'nothing changed')."""
        conn = await asyncpg.connect(self.dsn)
        try:
            queries = [
                "SELECT * FROM enterprises ORDER BY id",
                "SELECT * FROM productions ORDER BY id",
                "SELECT seq, event_id, value FROM outbox ORDER BY seq",  # sent_at moves
                "SELECT * FROM api_keys ORDER BY key_id",
            ]
            return tuple([[tuple(r) for r in await conn.fetch(q)] for q in queries])
        finally:
            await conn.close()

    async def enterprise(self, **overrides: Any) -> dict[str, Any]:
        response = await self.client.post("/v1/enterprises", json=new_enterprise(**overrides))
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def production(self, enterprise_id: str, **overrides: Any) -> dict[str, Any]:
        body = {"enterprise_id": enterprise_id, "title": "Drama", **overrides}
        response = await self.client.post("/v1/productions", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


@asynccontextmanager
async def running_registry(
    dsn: str, bootstrap: str, **overrides: Any
) -> AsyncIterator[RegistryClient]:
    await ensure_topics(bootstrap_servers=bootstrap, names=[topics.REGISTRY])
    await migrate_service(dsn, "reelpolicy_registry.migrations", "registry")
    key = await add_api_key(dsn)
    app = create_app(
        settings_for(Settings, database_url=dsn, bootstrap_servers=bootstrap, **overrides)
    )
    async with app.router.lifespan_context(app):
        registry = RegistryClient(app, dsn, bootstrap, key)
        async with registry.client:
            yield registry
