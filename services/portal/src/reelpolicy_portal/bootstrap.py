"""Wires the portal: settings -> its database pool (sessions) and the other services'
HTTP APIs. The portal consumes no topic and publishes no event, so it needs no broker.
One background task, supervised as the other services' are, deletes expired sessions."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from cryptography.fernet import MultiFernet

from reelpolicy_common.db.pool import create_service_pool
from reelpolicy_common.supervisor import RestartPolicy, SupervisedTask
from reelpolicy_common.telemetry import configure_tracing
from reelpolicy_portal.adapters.feed_tokens import PostgresFeedTokens
from reelpolicy_portal.adapters.services_api import ServicesApi
from reelpolicy_portal.adapters.sessions import PostgresSessionStore
from reelpolicy_portal.config import Settings
from reelpolicy_portal.domain.sign_in_limits import FailedSignIns
from reelpolicy_portal.handlers.session_pruning import prune_sessions_forever

SESSION_PRUNE_TASK = "session-pruner"
TASK_STATES = {"returned": "returned, not restarted", "died": "died", "restarting": "restarting"}
"""What /healthz says of a task with a problem (the words the other services use)."""

log = logging.getLogger(__name__)


@dataclass
class Portal:
    settings: Settings
    transports: dict[str, httpx.AsyncBaseTransport] | None = None
    """Tests hand the services' apps in (httpx.ASGITransport) instead of URLs."""
    _pool: asyncpg.Pool | None = field(default=None, init=False)
    _services: ServicesApi | None = field(default=None, init=False)
    _tasks: list[SupervisedTask] = field(default_factory=list, init=False)
    cipher: MultiFernet = field(init=False)
    failed_sign_ins: FailedSignIns = field(init=False)

    def __post_init__(self) -> None:
        self.cipher = self.settings.key_cipher()
        self.failed_sign_ins = FailedSignIns(
            limit=self.settings.portal_sign_in_failures,
            window_seconds=self.settings.portal_sign_in_window_seconds,
        )

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

    @property
    def tasks(self) -> list[SupervisedTask]:
        """The background tasks running now (none before start or after stop)."""
        return list(self._tasks)

    def sessions(self) -> PostgresSessionStore:
        return PostgresSessionStore(self.pool, self.cipher)

    def feed_tokens(self) -> PostgresFeedTokens:
        return PostgresFeedTokens(self.pool, self.cipher)

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
        policy = RestartPolicy(
            s.task_restart_initial_seconds,
            s.task_restart_max_seconds,
            s.task_heartbeat_grace_seconds,
        )
        pruner = SupervisedTask(
            SESSION_PRUNE_TASK,
            lambda: prune_sessions_forever(
                self.sessions(), every_seconds=s.portal_session_prune_seconds
            ),
            policy=policy,
        )
        try:
            pruner.start()
            self._tasks = [pruner]
            yield
        finally:
            for task in self._tasks:
                await task.stop()
            self._tasks = []
            await self._services.aclose()
            await self._pool.close()
            self._services = None
            self._pool = None

    async def check_health(self) -> dict[str, str]:
        """Problems by name in a few fixed words; what went wrong is logged, not answered."""
        problems: dict[str, str] = {}
        for task in self._tasks:
            if (problem := task.problem()) is not None:
                log.warning("background task %s: %s", task.name, problem)
                problems[task.name] = TASK_STATES.get(task.state, "no heartbeat")
        try:
            async with self.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1", timeout=2)
        except Exception:
            problems["database"] = "unreachable"
        return problems


def bootstrap(
    settings: Settings | None = None,
    *,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> Portal:
    return Portal(settings or Settings(), transports)
