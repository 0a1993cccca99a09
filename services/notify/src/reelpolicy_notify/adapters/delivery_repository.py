"""The delivery repository on asyncpg: creating (idempotently), listing, replaying."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic_core import to_json

from reelpolicy_notify.domain.alerts import digest_key
from reelpolicy_notify.domain.records import Attempt, Delivery, NewDelivery

_INSERT_MANY = """
    INSERT INTO deliveries (id, subscription_id, enterprise_id, alert_key, event_type, body,
                            occurred_at, traceparent)
    SELECT i, s, e, k, t, b::jsonb, o, tp
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::timestamptz[], $8::text[]) AS x(i, s, e, k, t, b, o, tp)
    ON CONFLICT (subscription_id, alert_key) DO NOTHING"""

_OPEN_DIGEST = """
    INSERT INTO deliveries (id, subscription_id, enterprise_id, alert_key, event_type,
                            next_attempt_at, occurred_at, traceparent)
    VALUES ($1, $2, $3, $4, 'digest', to_timestamp($5), $6, $7)
    ON CONFLICT (subscription_id, alert_key) DO UPDATE SET occurred_at = deliveries.occurred_at
    WHERE deliveries.status = 'pending' AND deliveries.total_attempts = 0
    RETURNING id"""

_SELECT = """SELECT id, subscription_id, enterprise_id, alert_key, event_type, body, status,
    attempt_count, total_attempts, next_attempt_at, occurred_at, created_at, finished_at,
    last_error FROM deliveries d"""


def _delivery(row: Any, attempts: tuple[Attempt, ...]) -> Delivery:
    return Delivery(
        **{k: row[k] for k in row.keys()},  # noqa: SIM118 (asyncpg Record)
        attempts=attempts,
    )


class PostgresDeliveryRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add_many(self, deliveries: Sequence[NewDelivery]) -> int:
        if not deliveries:
            return 0
        done = await self._conn.execute(
            _INSERT_MANY,
            [d.id for d in deliveries],
            [d.subscription_id for d in deliveries],
            [d.enterprise_id for d in deliveries],
            [d.alert_key for d in deliveries],
            [d.event_type for d in deliveries],
            [to_json(d.body).decode() for d in deliveries],
            [d.occurred_at for d in deliveries],
            [d.traceparent for d in deliveries],
        )
        return int(done.rsplit(" ", 1)[-1])

    async def add_to_digest(
        self, delivery: NewDelivery, *, window_seconds: int, now: datetime
    ) -> bool:
        """File an alert under the open digest of its subscription; False if already filed."""
        exists = await self._conn.fetchval(
            "SELECT 1 FROM digest_items WHERE subscription_id = $1 AND alert_key = $2",
            delivery.subscription_id,
            delivery.alert_key,
        )
        if exists:
            return False
        digest_id = None
        skip = 0
        while digest_id is None:  # the current window may be already in flight: use the next
            key, closes_at = digest_key(now=now, window_seconds=window_seconds, skip_windows=skip)
            digest_id = await self._conn.fetchval(
                _OPEN_DIGEST,
                uuid.uuid4(),
                delivery.subscription_id,
                delivery.enterprise_id,
                key,
                closes_at,
                now,
                delivery.traceparent,
            )
            skip += 1
        await self._conn.execute(
            "INSERT INTO digest_items (subscription_id, alert_key, delivery_id, item)"
            " VALUES ($1, $2, $3, $4)",
            delivery.subscription_id,
            delivery.alert_key,
            digest_id,
            delivery.body,
        )
        return True

    async def _attempts(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Attempt]]:
        rows = await self._conn.fetch(
            """SELECT delivery_id, attempt, at, status_code, latency_ms, error, response_body
               FROM delivery_attempts WHERE delivery_id = ANY ($1) ORDER BY attempt""",
            ids,
        )
        found: dict[uuid.UUID, list[Attempt]] = {}
        for r in rows:
            found.setdefault(r["delivery_id"], []).append(
                Attempt(
                    r["attempt"],
                    r["at"],
                    r["status_code"],
                    r["latency_ms"],
                    r["error"],
                    r["response_body"],
                )
            )
        return found

    async def page(
        self,
        *,
        enterprise_id: str | None,
        everyone: bool,
        subscription_id: uuid.UUID | None,
        status: str | None,
        since: datetime | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Delivery]:
        rows = await self._conn.fetch(
            _SELECT
            + """ WHERE ($1 OR d.enterprise_id = $2)
                 AND ($3::uuid IS NULL OR d.subscription_id = $3)
                 AND ($4::text IS NULL OR d.status = $4)
                 AND ($5::timestamptz IS NULL OR d.created_at >= $5)
                 AND ($6::timestamptz IS NULL OR (d.created_at, d.id) > ($6, $7::uuid))
               ORDER BY d.created_at, d.id LIMIT $8""",
            everyone,
            enterprise_id,
            subscription_id,
            status,
            since,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        attempts = await self._attempts([r["id"] for r in rows])
        return [_delivery(r, tuple(attempts.get(r["id"], ()))) for r in rows]

    async def get(self, delivery_id: uuid.UUID) -> Delivery | None:
        row = await self._conn.fetchrow(_SELECT + " WHERE d.id = $1", delivery_id)
        if row is None:
            return None
        return _delivery(row, tuple((await self._attempts([delivery_id])).get(delivery_id, ())))

    async def replay(self, delivery_id: uuid.UUID) -> bool:
        """Queue a failed delivery again (same id, so the same webhook-id), schedule reset."""
        done = await self._conn.execute(
            """UPDATE deliveries SET status = 'pending', attempt_count = 0, next_attempt_at = now(),
                   finished_at = NULL WHERE id = $1 AND status = 'failed'""",
            delivery_id,
        )
        await self._conn.execute("SELECT pg_notify('notify_deliveries', '')")
        return bool(done.endswith(" 1"))

    async def replay_failed_since(
        self, since: datetime, *, enterprise_id: str | None, everyone: bool
    ) -> int:
        done = await self._conn.execute(
            """UPDATE deliveries SET status = 'pending', attempt_count = 0, next_attempt_at = now(),
                   finished_at = NULL
               WHERE status = 'failed' AND finished_at >= $1 AND ($2 OR enterprise_id = $3)""",
            since.astimezone(UTC),
            everyone,
            enterprise_id,
        )
        await self._conn.execute("SELECT pg_notify('notify_deliveries', '')")
        return int(done.rsplit(" ", 1)[-1])
