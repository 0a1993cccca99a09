"""The delivery worker's queue: lease due deliveries (SKIP LOCKED), record outcomes.

A claimed row whose signing secret does not open (e.g. ``REELPOLICY_SECRET_KEY``
changed) is still handed out, with the reason in ``secret_error``: the attempt then
fails that delivery for good, where an exception would leave every row of the claim
leased and re-claimed forever.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from reelpolicy_notify.adapters.secret_box import SecretBox
from reelpolicy_notify.domain.attempt_outcomes import Outcome, storable
from reelpolicy_notify.domain.records import ClaimedDelivery

_CLAIM = """
    WITH due AS (
        SELECT id FROM deliveries
        WHERE (status = 'pending' AND next_attempt_at <= now())
           OR (status = 'delivering' AND claimed_until < now())
        ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
    UPDATE deliveries d SET status = 'delivering',
        claimed_until = now() + make_interval(secs => $2),
        attempt_count = d.attempt_count + 1, total_attempts = d.total_attempts + 1
    FROM due, subscriptions s
    WHERE d.id = due.id AND s.id = d.subscription_id
    RETURNING d.id, d.subscription_id, d.enterprise_id, d.alert_key, d.event_type, d.body,
        d.attempt_count,
        d.total_attempts, d.traceparent, s.channel, s.url, s.email, s.enabled,
        s.secret_sealed, s.previous_secret_sealed,
        s.previous_secret_expires_at > now() AS previous_valid,
        s.digest_window_seconds, s.failing_since, s.locale"""

_NEXT_DUE = """
    SELECT min(t) FROM (
        SELECT min(next_attempt_at) AS t FROM deliveries WHERE status = 'pending'
        UNION ALL
        SELECT min(claimed_until) FROM deliveries WHERE status = 'delivering') x"""

# One statement records a batch of outcomes: each attempt, and each delivery's next
# state (only if it is still this attempt's lease: a lease that expired and was taken
# over has a newer total_attempts, and that attempt decides).
_RECORD = """
    WITH o AS (
        SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::text[],
                             $6::text[], $7::text[], $8::float8[], $9::text[])
            AS o(delivery_id, attempt, status_code, latency_ms, error, response_body,
                 status, retry_in, last_error)
    ), attempts AS (
        INSERT INTO delivery_attempts (delivery_id, attempt, status_code, latency_ms, error,
                                       response_body)
        SELECT delivery_id, attempt, status_code, latency_ms, error, response_body FROM o
    )
    UPDATE deliveries d SET status = o.status,
        next_attempt_at = CASE WHEN o.status = 'pending'
            THEN now() + make_interval(secs => o.retry_in) ELSE d.next_attempt_at END,
        finished_at = CASE WHEN o.status = 'pending' THEN NULL ELSE now() END,
        claimed_until = NULL, last_error = o.last_error
    FROM o
    WHERE d.id = o.delivery_id AND d.status = 'delivering' AND d.total_attempts = o.attempt"""


class PostgresDeliveryQueue:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox) -> None:
        self._pool = pool
        self._box = box
        self._opened: dict[str, str] = {}  # sealed -> secret (a secret is opened once)

    def _open(self, sealed: str) -> str:
        secret = self._opened.get(sealed)
        if secret is None:
            if len(self._opened) > 100_000:
                self._opened.clear()
            secret = self._opened[sealed] = self._box.open(sealed)
        return secret

    def _claimed(self, row: Any) -> ClaimedDelivery:
        secrets: list[str] = []
        secret_error: str | None = None
        sealed = [row["secret_sealed"]] if row["secret_sealed"] else []  # none: WeCom
        if row["previous_secret_sealed"] and row["previous_valid"]:
            sealed.append(row["previous_secret_sealed"])
        try:
            secrets = [self._open(s) for s in sealed]
        except Exception as exc:  # SecretBoxError, or a sealed value that is not one at all
            secret_error = f"{type(exc).__name__}: {exc}"[:300]
        return ClaimedDelivery(
            id=row["id"],
            subscription_id=row["subscription_id"],
            enterprise_id=row["enterprise_id"],
            event_type=row["event_type"],
            body=row["body"],
            attempt_count=row["attempt_count"],
            total_attempts=row["total_attempts"],
            traceparent=row["traceparent"],
            channel=row["channel"],
            url=row["url"],
            email=row["email"],
            enabled=row["enabled"],
            secrets=tuple(secrets),
            digest_window_seconds=row["digest_window_seconds"],
            failing_since=row["failing_since"],
            secret_error=secret_error,
            locale=row["locale"],
            alert_key=row["alert_key"],
        )

    async def claim(self, *, limit: int, lease_seconds: float) -> list[ClaimedDelivery]:
        rows = await self._pool.fetch(_CLAIM, limit, lease_seconds)
        return [self._claimed(r) for r in rows]

    async def next_due(self) -> datetime | None:
        value: datetime | None = await self._pool.fetchval(_NEXT_DUE)
        return value

    async def digest_items(self, delivery_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT item FROM digest_items WHERE delivery_id = $1 ORDER BY created_at", delivery_id
        )
        return [r["item"] for r in rows]

    async def set_body(self, delivery_id: uuid.UUID, body: dict[str, Any]) -> None:
        await self._pool.execute("UPDATE deliveries SET body = $2 WHERE id = $1", delivery_id, body)

    async def record(self, outcomes: Sequence[Outcome]) -> list[uuid.UUID]:
        if not outcomes:
            return []
        disabled: list[uuid.UUID] = []
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                _RECORD,
                [o.delivery_id for o in outcomes],
                [o.total_attempts for o in outcomes],
                [o.result.status_code for o in outcomes],
                [o.result.latency_ms for o in outcomes],
                [
                    storable(o.result.error or (o.error if o.status != "succeeded" else None))
                    for o in outcomes
                ],
                [storable(o.result.response_body) for o in outcomes],
                [o.status for o in outcomes],
                [o.retry_in_seconds or 0.0 for o in outcomes],
                [None if o.status == "succeeded" else storable(o.error) for o in outcomes],
            )
            await self._update_endpoints(conn, outcomes, disabled)
        return disabled

    async def _update_endpoints(
        self, conn: Any, outcomes: Sequence[Outcome], disabled: list[uuid.UUID]
    ) -> None:
        ok = sorted({o.subscription_id for o in outcomes if o.endpoint_ok})
        failing = sorted({o.subscription_id for o in outcomes if not o.endpoint_ok} - set(ok))
        if ok:
            await conn.execute(
                "UPDATE subscriptions SET failing_since = NULL"
                " WHERE id = ANY ($1) AND failing_since IS NOT NULL",
                ok,
            )
        if failing:
            await conn.execute(
                "UPDATE subscriptions SET failing_since = now()"
                " WHERE id = ANY ($1) AND failing_since IS NULL",
                failing,
            )
        reasons = {o.subscription_id: o.disable_reason for o in outcomes if o.disable_reason}
        for subscription_id, reason in sorted(reasons.items()):
            done = await conn.fetchval(
                """UPDATE subscriptions SET enabled = false, disabled_reason = $2,
                       disabled_at = now(), updated_at = now()
                   WHERE id = $1 AND enabled RETURNING true""",
                subscription_id,
                reason,
            )
            if done:
                disabled.append(subscription_id)
