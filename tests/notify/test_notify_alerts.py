"""Alert targeting on the real servers: policy changes, backfill, digest, deadlines, two workers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from notify_app import RunningNotify, deliveries, prepare, running_notify, settled
from notify_events import (
    eligibility_event,
    enterprise_event,
    policy_event,
    produce,
    produce_eligibility,
)
from scripted_receiver import Receiver
from standardwebhooks import Webhook

from reelpolicy_contracts import topics
from reelpolicy_notify.handlers.deadlines import scan_deadlines
from service_harness import eventually

pytestmark = pytest.mark.servers


@pytest.fixture
async def notify(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RunningNotify]:
    await prepare(fresh_database, bootstrap_servers)
    async with running_notify(fresh_database, bootstrap_servers) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.stop()


def enterprise() -> str:
    return f"ent-{uuid.uuid4().hex[:10]}"


async def subscribe(
    notify: RunningNotify, enterprise_id: str, **body: Any
) -> tuple[Any, dict[str, Any]]:
    client = notify.client(await notify.key(enterprise_id=enterprise_id))
    response = await client.post("/v1/subscriptions", json={"channel": "webhook", **body})
    assert response.status_code == 201, response.text
    return client, response.json()


async def count(dsn: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


def rent_policy(policy_id: str, *, cap: int, to: str) -> dict[str, Any]:
    return {
        "id": policy_id,
        "title": {"zh": "租金", "en": "Rent support"},
        "issuer": {"name": "SH", "level": "municipal", "region_code": "310000"},
        "effective": {"from": "2025-01-01", "to": to},
        "subject": "enterprise",
        "criteria": {"all": []},
        "sources": [{"fact": "F-SH-01"}],
        "benefits": [
            {"id": "rent", "kind": "rent_subsidy", "basis": "fixed", "max_amount_cny": cap}
        ],
    }


async def test_policy_changes_reach_enterprises_in_the_issuers_region_with_a_summary(
    notify: RunningNotify, receiver: Receiver
) -> None:
    shanghai, zhengzhou = enterprise(), enterprise()
    await produce(
        notify.bootstrap,
        topics.REGISTRY,
        enterprise_event(shanghai, "310110"),
        enterprise_event(zhengzhou, "410102"),
    )
    await eventually(
        lambda: count(
            notify.dsn,
            "SELECT count(*) FROM enterprises WHERE enterprise_id = ANY($1)",
            [shanghai, zhengzhou],
        ),
        timeout=20,
    )
    sh_client, sub = await subscribe(notify, shanghai, url=receiver.url, events=["policy.changed"])
    zz_client, _ = await subscribe(notify, zhengzhou, url=receiver.url, events=["policy.changed"])
    policy_id = f"t-{uuid.uuid4().hex[:8]}"
    v1 = rent_policy(policy_id, cap=1_500_000, to="2027-06-24")
    v2 = rent_policy(policy_id, cap=2_000_000, to="2027-12-31")
    await produce(notify.bootstrap, topics.POLICY, policy_event(v1, 1), policy_event(v2, 2))
    done = await settled(sh_client, 2)
    summaries = sorted(d["body"]["data"]["summary"] for d in done)
    assert summaries == [
        "cap raised from 1,500,000 to 2,000,000 CNY for benefit rent;"
        " deadline moved from 2027-06-24 to 2027-12-31",
        "new policy: Rent support",
    ] or summaries == sorted(
        [
            "deadline moved from 2027-06-24 to 2027-12-31;"
            " cap raised from 1,500,000 to 2,000,000 CNY for benefit rent",
            "new policy: Rent support",
        ]
    )
    for request in receiver.requests:
        Webhook(sub["secret"]).verify(request.body, request.headers)
    assert await deliveries(zz_client) == []


async def test_backfill_sends_current_eligibility_only_when_asked(
    notify: RunningNotify, receiver: Receiver
) -> None:
    ent = enterprise()
    await produce_eligibility(notify.bootstrap, eligibility_event(ent))
    await eventually(
        lambda: count(notify.dsn, "SELECT count(*) FROM eligibility WHERE enterprise_id = $1", ent),
        timeout=20,
    )
    client, with_backfill = await subscribe(
        notify, ent, url=receiver.url, events=["eligibility.changed"], backfill=True
    )
    _, without = await subscribe(notify, ent, url=receiver.url, events=["eligibility.changed"])
    [delivery] = await settled(client, 1)
    assert delivery["subscription_id"] == with_backfill["id"]
    assert delivery["body"]["data"]["backfill"] is True
    assert await deliveries(client, subscription_id=without["id"]) == []


async def test_digest_batches_alerts_of_a_window_into_one_message(
    notify: RunningNotify, receiver: Receiver
) -> None:
    ent = enterprise()
    client, sub = await subscribe(
        notify, ent, url=receiver.url, events=["eligibility.changed"], digest={"window_seconds": 2}
    )
    await produce_eligibility(
        notify.bootstrap, *(eligibility_event(ent, policy_id=f"p-{i}") for i in range(3))
    )

    async def all_filed() -> bool:
        return await count(notify.dsn, "SELECT count(*) FROM digest_items") == 3

    await eventually(all_filed, timeout=20)
    done = await settled(client, 1)
    assert len(done) <= 2  # the three may straddle a window boundary
    assert all(d["event_type"] == "digest" for d in done)
    assert sum(d["body"]["data"]["count"] for d in done) == 3
    assert len(receiver.requests) == len(done)
    body = Webhook(sub["secret"]).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert body["type"] == "digest"


async def test_deadline_alerts_once_per_policy_expiry(
    notify: RunningNotify, receiver: Receiver
) -> None:
    ent = enterprise()
    policy_id = f"t-{uuid.uuid4().hex[:8]}"
    expires = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    await produce(
        notify.bootstrap, topics.POLICY, policy_event(rent_policy(policy_id, cap=9, to=expires), 1)
    )
    await produce_eligibility(notify.bootstrap, eligibility_event(ent, policy_id=policy_id))
    await eventually(
        lambda: count(
            notify.dsn, "SELECT count(*) FROM eligibility WHERE policy_id = $1", policy_id
        ),
        timeout=20,
    )
    client, _ = await subscribe(notify, ent, url=receiver.url, events=["policy.deadline"])
    _, far = await subscribe(
        notify, ent, url=receiver.url, events=["policy.deadline"], deadline_days=5
    )
    uow = notify.app.state.notify.uow
    assert await scan_deadlines(uow=uow) == 1
    assert await scan_deadlines(uow=uow) == 0
    [delivery] = await settled(client, 1)
    assert delivery["body"]["data"]["expires_on"] == expires
    assert delivery["body"]["data"]["eligible_subjects"] == [f"enterprise:{ent}"]
    assert await deliveries(client, subscription_id=far["id"]) == []


async def test_two_workers_on_one_database_deliver_each_delivery_once(
    fresh_database: str, bootstrap_servers: str
) -> None:
    await prepare(fresh_database, bootstrap_servers)
    receiver = await Receiver(delay=0.002).start()
    try:
        async with (
            running_notify(fresh_database, bootstrap_servers) as first,
            running_notify(fresh_database, bootstrap_servers),
        ):
            ent = enterprise()
            client, _ = await subscribe(
                first, ent, url=receiver.url, events=["eligibility.changed"]
            )
            total = 400
            conn = await asyncpg.connect(fresh_database)
            try:
                await conn.execute(
                    """INSERT INTO deliveries (id, subscription_id, enterprise_id, alert_key,
                           event_type, body)
                       SELECT gen_random_uuid(), s.id, s.enterprise_id, 'k' || g, 'test',
                              '{"type": "test", "timestamp": "t", "data": {}}'::jsonb
                       FROM subscriptions s, generate_series(1, $1) g""",
                    total,
                )
            finally:
                await conn.close()
            await eventually(lambda: len(receiver.requests) >= total, timeout=30)
            await asyncio.sleep(0.5)
            ids = [r.headers["webhook-id"] for r in receiver.requests]
            assert len(ids) == len(set(ids)) == total
            succeeded = await count(
                fresh_database, "SELECT count(*) FROM deliveries WHERE status = 'succeeded'"
            )
            assert succeeded == total
            del client
    finally:
        await receiver.stop()
