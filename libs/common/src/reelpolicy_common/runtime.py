"""The process runtime a service's bootstrap wires: pool, broker, outbox relay.

``ServiceRuntime.lifespan`` is the FastAPI lifespan: it opens the database pool,
starts the outbox relay and the FastStream broker (its subscribers), and on
shutdown (SIGTERM through uvicorn) stops the broker first, so in-flight handlers
finish and commit within the grace period, then lets the relay finish its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from reelpolicy_common.auth_cache import PrincipalCache
from reelpolicy_common.consumer.runner import RetryPolicy
from reelpolicy_common.db.pool import create_pool
from reelpolicy_common.kafka import KafkaRecordPublisher, make_producer
from reelpolicy_common.metrics import PrometheusOutboxMetrics
from reelpolicy_common.outbox.relay import OutboxRelay
from reelpolicy_common.settings import ServiceSettings
from reelpolicy_common.telemetry import configure_tracing

log = logging.getLogger(__name__)

BackgroundTask = Callable[[], Coroutine[Any, Any, None]]


class ServiceRuntime:
    """Owns the I/O resources of one service process."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            enable_idempotence=settings.kafka_enable_idempotence,
            graceful_timeout=settings.shutdown_grace_seconds,
            client_id=f"reelpolicy-{settings.service_name}",
            # FastStream's own default logs every message, in colour, on stdout; this
            # one goes through the service's JSON handler (and level) instead
            logger=logging.getLogger("faststream.access.kafka"),
            apply_types=False,  # handlers take the message as it is (see consumer.runner)
            middlewares=[KafkaPrometheusMiddleware(registry=REGISTRY)],
        )
        self.principals = PrincipalCache(ttl_seconds=settings.auth_cache_seconds)
        self._pool: asyncpg.Pool | None = None
        self._relay: OutboxRelay | None = None
        self._background: list[BackgroundTask] = []
        self._started_hooks: list[Callable[[asyncpg.Pool], Awaitable[None]]] = []
        self._stopped_hooks: list[Callable[[], None]] = []

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the runtime is not started")
        return self._pool

    @property
    def retry_policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(
            s.consumer_max_attempts, s.consumer_retry_initial_seconds, s.consumer_retry_max_seconds
        )

    def add_background(self, task: BackgroundTask) -> None:
        """Run ``task`` for the life of the process (cancelled on shutdown)."""
        self._background.append(task)

    def on_started(self, hook: Callable[[asyncpg.Pool], Awaitable[None]]) -> None:
        """Run ``hook`` once the pool is open, before consumers start."""
        self._started_hooks.append(hook)

    def on_stopped(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once everything else has stopped (to release what the service
        made besides the runtime's resources, e.g. worker processes)."""
        self._stopped_hooks.append(hook)

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        s = self.settings
        configure_tracing(service=s.service_name, otlp_endpoint=s.otel_exporter_otlp_endpoint)
        self._pool = await create_pool(
            s.database_url, min_size=s.database_pool_min, max_size=s.database_pool_max
        )
        producer = make_producer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            enable_idempotence=s.kafka_enable_idempotence,
        )
        tasks: list[asyncio.Task[None]] = []
        relay_task: asyncio.Task[None] | None = None
        try:
            await producer.start()
            self._relay = OutboxRelay(
                pool=self._pool,
                publisher=KafkaRecordPublisher(producer),
                batch_size=s.outbox_batch_size,
                concurrency=s.outbox_concurrency,
                retention_seconds=s.outbox_retention_seconds,
                metrics=PrometheusOutboxMetrics(),
            )
            relay_task = asyncio.create_task(self._relay.run(), name="outbox-relay")
            for hook in self._started_hooks:
                await hook(self._pool)
            await self.broker.start()
            tasks = [asyncio.create_task(task()) for task in self._background]
            log.info("%s started", s.service_name)
            yield
        finally:
            log.info("%s stopping", s.service_name)
            await self.broker.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self._relay is not None and relay_task is not None:
                self._relay.stop()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(relay_task, timeout=s.shutdown_grace_seconds)
            await producer.stop()
            await self._pool.close()
            self._pool = None
            for stopped in self._stopped_hooks:
                stopped()

    async def check_health(self) -> dict[str, str]:
        """Problems with the database or the broker, by name; empty when healthy."""
        problems: dict[str, str] = {}
        try:
            async with self.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1", timeout=2)
        except Exception as exc:
            problems["database"] = f"{type(exc).__name__}: {exc}"[:300]
        try:
            if not await self.broker.ping(timeout=2):
                problems["broker"] = "broker did not answer"
        except Exception as exc:
            problems["broker"] = f"{type(exc).__name__}: {exc}"[:300]
        return problems
