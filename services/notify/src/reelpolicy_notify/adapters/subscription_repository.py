"""The subscription repository on asyncpg (secrets sealed with the secret box)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from reelpolicy_notify.adapters.secret_box import SecretBox
from reelpolicy_notify.domain.filters import Filters
from reelpolicy_notify.domain.records import Subscription

COLUMNS = """s.id, s.enterprise_id, s.channel, s.url, s.email, s.events, s.filters,
    s.deadline_days, s.digest_window_seconds, s.enabled, s.disabled_reason, s.disabled_at,
    s.failing_since, s.previous_secret_expires_at, s.created_at, s.updated_at, s.locale"""


def subscription_from_row(row: Any) -> Subscription:
    return Subscription(
        id=row["id"],
        enterprise_id=row["enterprise_id"],
        channel=row["channel"],
        url=row["url"],
        email=row["email"],
        events=tuple(row["events"]),
        filters=Filters.from_json(row["filters"]),
        deadline_days=row["deadline_days"],
        digest_window_seconds=row["digest_window_seconds"],
        locale=row["locale"],
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        disabled_at=row["disabled_at"],
        failing_since=row["failing_since"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _filters_json(filters: Filters) -> dict[str, Any]:
    return filters.model_dump(exclude_none=True)


class PostgresSubscriptionRepository:
    def __init__(self, conn: asyncpg.Connection, box: SecretBox) -> None:
        self._conn = conn
        self._box = box

    async def add(self, subscription: Subscription, *, secret: str | None) -> Subscription:
        s = subscription
        row = await self._conn.fetchrow(
            f"""INSERT INTO subscriptions AS s (id, enterprise_id, channel, url, email, events,
                   filters, deadline_days, digest_window_seconds, secret_sealed, locale)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}""",
            s.id,
            s.enterprise_id,
            s.channel,
            s.url,
            s.email,
            list(s.events),
            _filters_json(s.filters),
            s.deadline_days,
            s.digest_window_seconds,
            None if secret is None else self._box.seal(secret),
            s.locale,
        )
        return subscription_from_row(row)

    async def lock_and_count(self, enterprise_id: str) -> int:
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('subscriptions:' || $1, 0))",
            enterprise_id,
        )
        count: int = await self._conn.fetchval(
            "SELECT count(*) FROM subscriptions WHERE enterprise_id = $1", enterprise_id
        )
        return count

    async def get(self, subscription_id: uuid.UUID) -> Subscription | None:
        row = await self._conn.fetchrow(
            f"SELECT {COLUMNS} FROM subscriptions s WHERE s.id = $1", subscription_id
        )
        return None if row is None else subscription_from_row(row)

    async def page(
        self,
        *,
        enterprise_id: str | None,
        everyone: bool,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Subscription]:
        rows = await self._conn.fetch(
            f"""SELECT {COLUMNS} FROM subscriptions s
               WHERE ($1 OR s.enterprise_id = $2)
                 AND ($3::timestamptz IS NULL OR (s.created_at, s.id) > ($3, $4::uuid))
               ORDER BY s.created_at, s.id LIMIT $5""",
            everyone,
            enterprise_id,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [subscription_from_row(r) for r in rows]

    async def save(self, subscription: Subscription) -> Subscription:
        s = subscription
        row = await self._conn.fetchrow(
            f"""UPDATE subscriptions s SET url = $2, email = $3, events = $4, filters = $5,
                   deadline_days = $6, digest_window_seconds = $7, enabled = $8,
                   disabled_reason = $9, disabled_at = $10, failing_since = $11,
                   locale = $12, updated_at = now()
               WHERE s.id = $1 RETURNING {COLUMNS}""",
            s.id,
            s.url,
            s.email,
            list(s.events),
            _filters_json(s.filters),
            s.deadline_days,
            s.digest_window_seconds,
            s.enabled,
            s.disabled_reason,
            s.disabled_at,
            s.failing_since,
            s.locale,
        )
        return subscription_from_row(row)

    async def delete(self, subscription_id: uuid.UUID) -> bool:
        done = await self._conn.execute("DELETE FROM subscriptions WHERE id = $1", subscription_id)
        return bool(done.endswith(" 1"))

    async def rotate_secret(
        self, subscription_id: uuid.UUID, *, secret: str, overlap_until: datetime
    ) -> None:
        await self._conn.execute(
            """UPDATE subscriptions SET previous_secret_sealed = secret_sealed,
                   previous_secret_expires_at = $3, secret_sealed = $2, updated_at = now()
               WHERE id = $1""",
            subscription_id,
            self._box.seal(secret),
            overlap_until,
        )

    async def replace_secret(self, subscription_id: uuid.UUID, *, secret: str) -> None:
        await self._conn.execute(
            """UPDATE subscriptions SET secret_sealed = $2, previous_secret_sealed = NULL,
                   previous_secret_expires_at = NULL, updated_at = now()
               WHERE id = $1""",
            subscription_id,
            self._box.seal(secret),
        )

    async def for_enterprise(self, enterprise_id: str, event_type: str) -> list[Subscription]:
        rows = await self._conn.fetch(
            f"""SELECT {COLUMNS} FROM subscriptions s
               WHERE (s.enterprise_id = $1 OR s.enterprise_id IS NULL)
                 AND s.enabled AND $2 = ANY (s.events)""",
            enterprise_id,
            event_type,
        )
        return [subscription_from_row(r) for r in rows]

    async def for_region(
        self, prefix: str | None, event_type: str
    ) -> list[tuple[Subscription, str | None]]:
        rows = await self._conn.fetch(
            f"""SELECT {COLUMNS}, s.enterprise_id AS target FROM subscriptions s
                 LEFT JOIN enterprises e ON e.enterprise_id = s.enterprise_id
               WHERE s.enterprise_id IS NOT NULL AND s.enabled AND $2 = ANY (s.events)
                 AND NOT coalesce(e.deleted, false)
                 AND ($1::text IS NULL OR starts_with(e.region_code, $1))
               UNION ALL
               SELECT {COLUMNS}, NULL FROM subscriptions s
               WHERE s.enterprise_id IS NULL AND s.enabled AND $2 = ANY (s.events)""",
            prefix,
            event_type,
        )
        return [(subscription_from_row(r), r["target"]) for r in rows]

    async def record_eligibility_and_find(
        self, changes: Sequence[dict[str, Any]]
    ) -> tuple[dict[str | None, list[Subscription]], dict[str, dict[str, Any]]]:
        """Upsert the (subject, policy) eligibilities and return, in the same round trip,
        the subscriptions wanting their alerts; then the policies (hot path)."""
        latest = {(c["subject_type"], c["subject_id"], c["policy_id"]): c for c in changes}
        rows = latest.values()
        found = await self._conn.fetch(
            f"""WITH projected AS (
                   INSERT INTO eligibility (subject_type, subject_id, policy_id, enterprise_id,
                       policy_version, status, amount_cny)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                       $5::int[], $6::text[], $7::bigint[])
                   ON CONFLICT (subject_type, subject_id, policy_id) DO UPDATE SET
                       enterprise_id = EXCLUDED.enterprise_id,
                       policy_version = EXCLUDED.policy_version, status = EXCLUDED.status,
                       amount_cny = EXCLUDED.amount_cny, updated_at = now())
               SELECT {COLUMNS} FROM subscriptions s
               WHERE (s.enterprise_id = ANY ($8::text[]) OR s.enterprise_id IS NULL)
                 AND s.enabled AND 'eligibility.changed' = ANY (s.events)""",
            [c["subject_type"] for c in rows],
            [c["subject_id"] for c in rows],
            [c["policy_id"] for c in rows],
            [c["enterprise_id"] for c in rows],
            [c["policy_version"] for c in rows],
            [c["status"] for c in rows],
            [c.get("amount_cny") for c in rows],
            list({c["enterprise_id"] for c in rows}),
        )
        subscribed: dict[str | None, list[Subscription]] = {}
        for row in found:
            subscription = subscription_from_row(row)
            subscribed.setdefault(subscription.enterprise_id, []).append(subscription)
        if not subscribed:
            return subscribed, {}
        policies = await self._conn.fetch(
            "SELECT policy_id, version, document, revoked FROM policies"
            " WHERE policy_id = ANY ($1::text[])",
            list({c["policy_id"] for c in rows}),
        )
        return subscribed, {p["policy_id"]: dict(p) for p in policies}

    async def disable(self, subscription_id: uuid.UUID, *, reason: str) -> Subscription | None:
        row = await self._conn.fetchrow(
            f"""UPDATE subscriptions s SET enabled = false, disabled_reason = $2,
                   disabled_at = now(), updated_at = now()
               WHERE s.id = $1 AND s.enabled RETURNING {COLUMNS}""",
            subscription_id,
            reason,
        )
        return None if row is None else subscription_from_row(row)
