"""The process runtime a service's bootstrap wires: pool, broker, outbox relay.

``ServiceRuntime.lifespan`` is the FastAPI lifespan: it opens the database pool,
starts the outbox relay and the FastStream broker (its subscribers), and on
shutdown (SIGTERM through uvicorn) stops the broker first, so in-flight handlers
finish and commit within the grace period, then lets the relay finish its batch.

A service with consumers also counts the dead letters of the topics it consumes that
wait for a replay (:mod:`reelpolicy_common.dead_letter_gauge`), and prunes its consumers'
old ``processed_events`` records
(:func:`~reelpolicy_common.consumer.idempotency.prune_processed_forever`).

The relay and the background tasks run supervised (:mod:`reelpolicy_common.supervisor`):
restarted when they raise, and named by ``check_health`` when they are down or stuck,
as is a FastStream subscriber whose consume task stopped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from reelpolicy_common.auth import Principal
from reelpolicy_common.auth_cache import PrincipalCache
from reelpolicy_common.consumer.idempotency import prune_processed_forever
from reelpolicy_common.consumer.runner import RetryPolicy
from reelpolicy_common.db.pool import create_service_pool
from reelpolicy_common.dead_letter_gauge import watch_dead_letters
from reelpolicy_common.kafka import KafkaRecordPublisher, KafkaSecurity, make_producer
from reelpolicy_common.metrics import PrometheusOutboxMetrics
from reelpolicy_common.outbox.relay import OutboxRelay
from reelpolicy_common.settings import ServiceSettings
from reelpolicy_common.supervisor import ConsumerWatch, RestartPolicy, SupervisedTask, heartbeat
from reelpolicy_common.telemetry import configure_tracing

log = logging.getLogger(__name__)

BackgroundTask = Callable[[], Coroutine[Any, Any, None]]

RELAY_TASK = "outbox-relay"
RELAY_BEAT_SECONDS = 40.0
"""The relay reports its metrics at most every 5 s after a pass, and an idle relay
wakes every 30 s (its idle timeout): it beats from that report."""
CONSUMER_WATCH_SECONDS = 5.0
DEAD_LETTER_TASK = "dead-letter-gauge"
PRUNE_TASK = "processed-events-pruner"


class HeartbeatOutboxMetrics(PrometheusOutboxMetrics):
    """The relay's metrics sink, which also counts a report as the relay's heartbeat."""

    def observe(self, *, published: int, backlog: int, oldest_age_seconds: float) -> None:
        super().observe(published=published, backlog=backlog, oldest_age_seconds=oldest_age_seconds)
        heartbeat(within=RELAY_BEAT_SECONDS)


class ServiceRuntime:
    """Owns the I/O resources of one service process."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.kafka_security = KafkaSecurity.from_settings(settings)
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            security=self.kafka_security.faststream(),
            enable_idempotence=settings.kafka_enable_idempotence,
            graceful_timeout=settings.shutdown_grace_seconds,
            client_id=f"reelpolicy-{settings.service_name}",
            # FastStream's own default logs every message, in colour, on stdout; this
            # one goes through the service's JSON handler (and level) instead
            logger=logging.getLogger("faststream.access.kafka"),
            apply_types=False,  # handlers take the message as it is (see consumer.runner)
            middlewares=[KafkaPrometheusMiddleware(registry=REGISTRY)],
        )
        self.principals: PrincipalCache[Principal] = PrincipalCache(
            ttl_seconds=settings.auth_cache_seconds
        )
        self._pool: asyncpg.Pool | None = None
        self._relay: OutboxRelay | None = None
        self._background: list[tuple[str, BackgroundTask]] = []
        self._supervised: list[SupervisedTask] = []
        self._consumers = ConsumerWatch(self.broker)
        self._stopping = False
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
            s.consumer_max_attempts,
            s.consumer_retry_initial_seconds,
            s.consumer_retry_max_seconds,
            outage_max_seconds=s.consumer_outage_backoff_max_seconds,
        )

    @property
    def restart_policy(self) -> RestartPolicy:
        s = self.settings
        return RestartPolicy(
            s.task_restart_initial_seconds,
            s.task_restart_max_seconds,
            s.task_heartbeat_grace_seconds,
        )

    def consumed_topics(self) -> list[str]:
        """The topics this service's subscribers consume."""
        return sorted(
            {name for sub in self.broker.subscribers for name in getattr(sub, "topic_names", [])}
        )

    def add_background(self, task: BackgroundTask, *, name: str | None = None) -> None:
        """Run ``task`` for the life of the process (restarted when it raises, cancelled
        on shutdown). ``name`` (default: the function's name) labels its health and
        metrics; the task calls :func:`reelpolicy_common.supervisor.heartbeat` from its
        loop to have a stuck loop reported."""
        label = name or getattr(task, "__name__", "") or "background"
        if label == "<lambda>":
            label = f"background-{len(self._background) + 1}"
        self._background.append((label, task))

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
        self._pool = await create_service_pool(s)
        producer = make_producer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            enable_idempotence=s.kafka_enable_idempotence,
            security=self.kafka_security,
        )
        relay: SupervisedTask | None = None
        self._stopping = False
        try:
            await producer.start()
            self._relay = OutboxRelay(
                pool=self._pool,
                publisher=KafkaRecordPublisher(producer),
                batch_size=s.outbox_batch_size,
                concurrency=s.outbox_concurrency,
                retention_seconds=s.outbox_retention_seconds,
                metrics=HeartbeatOutboxMetrics(),
            )
            relay = SupervisedTask(RELAY_TASK, self._relay.run, policy=self.restart_policy)
            relay.start()
            self._supervised = [relay]
            for hook in self._started_hooks:
                await hook(self._pool)
            await self.broker.start()
            self._consumers.started()
            background = [
                *self._background,
                (
                    "consumer-watch",
                    lambda: self._consumers.run(every_seconds=CONSUMER_WATCH_SECONDS),
                ),
            ]
            if consumed := self.consumed_topics():
                background += [
                    (DEAD_LETTER_TASK, lambda: watch_dead_letters(self.settings, consumed)),
                    (
                        PRUNE_TASK,
                        lambda: prune_processed_forever(
                            self.pool, retention_seconds=s.processed_events_retention_seconds
                        ),
                    ),
                ]
            for name, factory in background:
                supervised = SupervisedTask(name, factory, policy=self.restart_policy)
                supervised.start()
                self._supervised.append(supervised)
            log.info("%s started", s.service_name)
            yield
        finally:
            log.info("%s stopping", s.service_name)
            self._stopping = True
            await self.broker.stop()
            for supervised in self._supervised:
                if supervised is not relay:
                    await supervised.stop()
            if self._relay is not None and relay is not None:
                self._relay.stop()
                await relay.stop(grace_seconds=s.shutdown_grace_seconds)
            self._supervised = []
            await producer.stop()
            await self._pool.close()
            self._pool = None
            for stopped in self._stopped_hooks:
                stopped()

    def task_problems(self) -> dict[str, str]:
        """Background tasks and consumers that are down or stuck, by name, with why (their
        last error's text included: for the log, not for /healthz)."""
        if self._stopping:
            return {}
        problems = {
            task.name: problem
            for task in self._supervised
            if (problem := task.problem()) is not None
        }
        problems.update(self._consumers.observe())
        return problems

    async def check_health(self) -> dict[str, str]:
        """Problems with the database, the broker, background tasks or consumers: each
        name with its state in a few fixed words (``unreachable``, ``restarting``...);
        empty when healthy. What went wrong (error texts, which name hosts and users) is
        logged, never answered."""
        details = self.task_problems()
        problems = {name: _task_state(name, self._supervised) for name in details}
        try:
            async with self.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1", timeout=2)
        except Exception as exc:
            details["database"] = f"{type(exc).__name__}: {exc}"
            problems["database"] = "unreachable"
        try:
            if not await self.broker.ping(timeout=2):
                details["broker"] = "broker did not answer"
                problems["broker"] = "unreachable"
        except Exception as exc:
            details["broker"] = f"{type(exc).__name__}: {exc}"
            problems["broker"] = "unreachable"
        if details:
            log.warning(
                "unhealthy: %s", "; ".join(f"{name}: {why}" for name, why in details.items())
            )
        return problems


_TASK_STATES = {"returned": "returned, not restarted", "died": "died", "restarting": "restarting"}


def _task_state(name: str, supervised: list[SupervisedTask]) -> str:
    """What /healthz says of a task or consumer with a problem: its state, not its error."""
    for task in supervised:
        if task.name == name:
            return _TASK_STATES.get(task.state, "no heartbeat")
    return "consume task(s) stopped"
