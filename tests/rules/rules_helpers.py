"""Helpers for the rules tests: documents, snapshots, a topic collector, a fake clock,
a fresh rules database, the rules app running in this process."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from reelpolicy_common.db.pool import create_pool
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_devstack.servers import EmbeddedPostgres, database_uri, ensure_database
from reelpolicy_rules import bootstrap as wiring
from reelpolicy_rules.adapters.cache import InMemoryPolicyBook
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.config import Settings
from reelpolicy_rules.main import create_app
from service_harness import add_api_key, migrate_service, settings_for


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def enterprise_policy(
    pid: str, *, min_employees: int = 10, to: str | None = None, title: str = "Test"
) -> dict[str, Any]:
    return {
        "id": pid,
        "title": {"zh": "测试", "en": title},
        "issuer": {"name": "Test", "level": "municipal", "region_code": "310000"},
        "sources": [{"fact": "F-SH-01"}],
        "effective": {"from": "2024-01-01", "to": to},
        "subject": "enterprise",
        "criteria": {
            "all": [
                {"field": "enterprise.region_code", "op": "within", "value": "31"},
                {"field": "enterprise.employees", "op": "gte", "value": min_employees},
            ]
        },
        "benefits": [
            {"id": "grant", "kind": "subsidy", "basis": "fixed", "max_amount_cny": 100000}
        ],
    }


def production_policy(pid: str) -> dict[str, Any]:
    doc = enterprise_policy(pid)
    doc["subject"] = "production"
    doc["criteria"] = {
        "all": [
            {"field": "production.region_code", "op": "within", "value": "31"},
            {"field": "production.budget_cny", "op": "gte", "value": 500000},
        ]
    }
    return doc


def policy_event(doc: dict[str, Any], version: int) -> Envelope:
    payload = {"policy_id": doc["id"], "version": version, "document": {**doc, "version": version}}
    return Envelope(
        type=EventType.policy_published, producer="test", key=doc["id"], payload=payload
    )


def revoke_event(pid: str, version: int) -> Envelope:
    payload = {"policy_id": pid, "version": version, "reason": "test"}
    return Envelope(type=EventType.policy_revoked, producer="test", key=pid, payload=payload)


def enterprise_event(eid: str, version: int, *, employees: int | None = 20) -> Envelope:
    attributes = {
        "name": "E",
        "credit_code": "9" * 18,
        "region_code": "310110",
        "employees": employees,
        "kind": "production_company",
    }
    payload = {"enterprise_id": eid, "version": version, "attributes": attributes}
    return Envelope(type=EventType.enterprise_upserted, producer="test", key=eid, payload=payload)


def production_event(pid: str, eid: str, version: int, *, budget: int = 1_000_000) -> Envelope:
    attributes = {"enterprise_id": eid, "title": "P", "region_code": "310110", "budget_cny": budget}
    payload = {
        "production_id": pid,
        "enterprise_id": eid,
        "version": version,
        "attributes": attributes,
    }
    return Envelope(type=EventType.production_upserted, producer="test", key=eid, payload=payload)


async def produce(bootstrap: str, topic: str, *envelopes: Envelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        for e in envelopes:
            await producer.send_and_wait(topic, e.to_bytes(), key=e.key.encode())
    finally:
        await producer.stop()


class Collector:
    """Every envelope appended to a topic after it started (all partitions)."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []
        self.arrived: list[float] = []

    def of(self, kind: EventType, **payload: Any) -> list[Envelope]:
        return [
            e
            for e in self.events
            if e.type is kind and all(e.payload.get(k) == v for k, v in payload.items())
        ]


@contextlib.asynccontextmanager
async def collecting(bootstrap: str, topic: str = topics.ELIGIBILITY) -> AsyncIterator[Collector]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10)
    await consumer.start()
    tps = [TopicPartition(topic, i) for i in range(topics.partitions(topic))]
    consumer.assign(tps)
    # From the beginning: the topic is shared by the session's tests (callers filter
    # by their own ids), and Tansu's ListOffsets answers are not record offsets, so
    # seeking to the end can land past records still to come.
    await consumer.seek_to_beginning(*tps)
    collector = Collector()
    loop = asyncio.get_running_loop()

    async def run() -> None:
        while True:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                for r in records:
                    collector.events.append(Envelope.model_validate_json(r.value))
                    collector.arrived.append(loop.time())

    task = asyncio.create_task(run())
    try:
        yield collector
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T04:00:00").replace(tzinfo=UTC)


class RulesDatabase:
    """A fresh, migrated rules database, its pool and a policy book, for tests that call
    the handlers directly."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.book = pool, InMemoryPolicyBook()

    @classmethod
    async def create(cls, postgres: EmbeddedPostgres, *, max_size: int) -> Self:
        name = f"t_{uuid.uuid4().hex[:12]}"
        await ensure_database(postgres.uri(), name)
        dsn = database_uri(postgres.uri(), name)
        await migrate_service(dsn, "reelpolicy_rules.migrations", "rules")
        return cls(await create_pool(dsn, max_size=max_size))

    def uow(self) -> RulesUnitOfWork:
        return RulesUnitOfWork(self.pool)

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.pool.fetch(sql)]


@dataclass
class RunningRules:
    """The rules app in this process, on its own database, with a client holding an
    operator key and a collector of the eligibility topic."""

    client: httpx.AsyncClient
    dsn: str
    bootstrap: str
    clock: FakeClock
    seen: Collector
    operator: str
    rules: wiring.Rules

    async def fetchval(self, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def running_rules(
    dsn: str, bootstrap_servers: str, **settings: Any
) -> AsyncIterator[RunningRules]:
    """Migrate ``dsn``, start rules on it (its clock at 2026-03-01) with ``settings``."""
    await ensure_topics(bootstrap_servers=bootstrap_servers)
    await migrate_service(dsn, "reelpolicy_rules.migrations", "rules")
    key = await add_api_key(dsn)
    clock = FakeClock(at("2026-03-01"))
    app = create_app(
        rules=wiring.bootstrap(
            settings_for(
                Settings, database_url=dsn, bootstrap_servers=bootstrap_servers, **settings
            ),
            clock=clock,
        )
    )
    async with (
        collecting(bootstrap_servers) as seen,
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://rules",
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        yield RunningRules(client, dsn, bootstrap_servers, clock, seen, key, app.state.rules)
