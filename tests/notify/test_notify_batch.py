"""A consumed batch applied in one transaction equals the same events applied one by one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from notify_events import eligibility_event, enterprise_event, policy_event

from reelpolicy_common.db.pool import create_pool
from reelpolicy_contracts.events import Envelope
from reelpolicy_notify.adapters.postgres import NotifyUnitOfWork
from reelpolicy_notify.adapters.secret_box import SecretBox, parse_key_ring
from reelpolicy_notify.handlers.consumed_events import handle_event, handle_events
from service_harness import SEALING_KEYS, migrate_service

pytestmark = pytest.mark.servers
BOX = SecretBox(parse_key_ring(SEALING_KEYS))


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate_service(fresh_database, "reelpolicy_notify.migrations", "notify")
    pool = await create_pool(fresh_database)
    yield pool
    await pool.close()


async def subscribe(pool: asyncpg.Pool, enterprise_id: str | None, **extra: Any) -> None:
    await pool.execute(
        "INSERT INTO subscriptions (id, enterprise_id, channel, url, events, secret_sealed,"
        " filters) VALUES ($1, $2, 'webhook', 'http://127.0.0.1:1/hook', $3, $4, $5)",
        uuid.uuid4(),
        enterprise_id,
        ["eligibility.changed", "policy.changed"],
        BOX.seal("whsec_" + "A" * 32),
        extra.get("filters", {}),
    )


async def outcome(pool: asyncpg.Pool) -> tuple[list[Any], list[Any], int]:
    deliveries = await pool.fetch(
        "SELECT s.enterprise_id AS owner, d.alert_key, d.event_type, d.body, d.traceparent"
        " FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id"
        " ORDER BY 1 NULLS FIRST, 2"
    )
    eligibility = await pool.fetch(
        "SELECT subject_type, subject_id, policy_id, enterprise_id, policy_version, status,"
        " amount_cny FROM eligibility ORDER BY 1, 2, 3"
    )
    processed = await pool.fetchval("SELECT count(*) FROM processed_events")
    return [dict(r) for r in deliveries], [dict(r) for r in eligibility], int(processed)


def scenario(a: str, b: str) -> list[tuple[Envelope, str | None]]:
    """Two companies, a policy arriving midway, a change superseded within the batch."""
    doc = {
        "id": "p-rent",
        "title": {"zh": "租金", "en": "Rent support"},
        "issuer": {"name": "SH", "level": "municipal", "region_code": "310000"},
        "effective": {"from": "2025-01-01", "to": "2027-12-31"},
        "subject": "enterprise",
        "criteria": {"all": []},
        "sources": [{"fact": "F-SH-01"}],
        "benefits": [
            {"id": "rent", "kind": "rent_subsidy", "basis": "fixed", "max_amount_cny": 10**6}
        ],
    }
    events = [
        enterprise_event(a, "310110"),
        eligibility_event(a, amount=100_000),
        eligibility_event(b, policy_id="p-other", amount=5),
        policy_event(doc, 1),
        eligibility_event(a, amount=200_000),  # supersedes the first for the projection
        eligibility_event(b, status="ineligible"),
    ]
    return [(e, f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01") for e in events]


async def test_a_batch_creates_what_the_same_events_create_one_by_one(
    fresh_database: str, pool: asyncpg.Pool
) -> None:
    a, b = "ent-a", "ent-b"
    for enterprise_id in (a, b, None):
        await subscribe(pool, enterprise_id)
    await subscribe(pool, b, filters={"min_amount_cny": 10})  # filters apply in batches too
    events = scenario(a, b)

    def uow() -> NotifyUnitOfWork:
        return NotifyUnitOfWork(pool, BOX)

    # The same event twice in the batch, and a redelivered batch, change nothing more.
    assert await handle_events(uow=uow, events=[*events, events[1]]) == len(events)
    assert await handle_events(uow=uow, events=events) == 0
    batched = await outcome(pool)

    await pool.execute(
        "TRUNCATE deliveries, eligibility, processed_events, policies, enterprises CASCADE"
    )
    for envelope, traceparent in events:
        assert await handle_event(uow=uow, envelope=envelope, traceparent=traceparent)
    one_by_one = await outcome(pool)

    assert batched == one_by_one
    deliveries, eligibility, processed = batched
    assert processed == len(events)
    assert {(r["subject_id"], r["policy_id"], r["amount_cny"]) for r in eligibility} == {
        (a, "p-rent", 200_000),
        (b, "p-other", 5),
        (b, "p-rent", None),
    }
    # Each eligibility change alerts its company and the platform-wide subscription,
    # each delivery continuing its own event's trace; the policy alerts a (in 310000)
    # and the platform; b's subscription with a minimum amount takes neither of b's.
    traces = {traceparent for _, traceparent in events}
    assert {d["traceparent"] for d in deliveries} <= traces
    by_owner: dict[str | None, int] = {}
    for d in deliveries:
        by_owner[d["owner"]] = by_owner.get(d["owner"], 0) + 1
    assert by_owner == {None: 5, a: 3, b: 2}
