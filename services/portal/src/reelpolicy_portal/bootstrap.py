"""Wires the portal: settings -> its database pool (sessions) and the other services'
HTTP APIs. The portal consumes no topic and publishes no event, so it needs no broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from cryptography.fernet import MultiFernet

from reelpolicy_common.db.pool import create_service_pool
from reelpolicy_common.telemetry import configure_tracing
from reelpolicy_portal.adapters.feed_tokens import PostgresFeedTokens
from reelpolicy_portal.adapters.services_api import ServicesApi
from reelpolicy_portal.adapters.sessions import PostgresSessionStore
from reelpolicy_portal.config import Settings


@dataclass
class Portal:
    settings: Settings
    transports: dict[str, httpx.AsyncBaseTransport] | None = None
    """Tests hand the services' apps in (httpx.ASGITransport) instead of URLs."""
    _pool: asyncpg.Pool | None = field(default=None, init=False)
    _services: ServicesApi | None = field(default=None, init=False)
    cipher: MultiFernet = field(init=False)

    def __post_init__(self) -> None:
        self.cipher = self.settings.key_cipher()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the portal is not started")
        return self._pool

    @property
    def services(self) -> ServicesApi:
        if self._services is None:
            raise RuntimeError("the portal is not started")
        return self._services

    def sessions(self) -> PostgresSessionStore:
        return PostgresSessionStore(self.pool, self.cipher)

    def feed_tokens(self) -> PostgresFeedTokens:
        return PostgresFeedTokens(self.pool, self.settings.key_cipher())

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        s = self.settings
        configure_tracing(service=s.service_name, otlp_endpoint=s.otel_exporter_otlp_endpoint)
        self._pool = await create_service_pool(s)
        self._services = ServicesApi(
            registry_url=s.registry_url,
            rules_url=s.rules_url,
            ingest_url=s.ingest_url,
            notify_url=s.notify_url,
            timeout=s.upstream_timeout_seconds,
            transports=self.transports,
        )
        try:
            await self.sessions().delete_expired()
            yield
        finally:
            await self._services.aclose()
            await self._pool.close()
            self._services = None
            self._pool = None

    async def check_health(self) -> dict[str, str]:
        try:
            async with self.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1", timeout=2)
        except Exception:
            return {"database": "unreachable"}
        return {}


def bootstrap(
    settings: Settings | None = None,
    *,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> Portal:
    return Portal(settings or Settings(), transports)
