"""Notify's own projections of other services' events: enterprises, policies, eligibility."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import asyncpg

from reelpolicy_notify.domain.policies import PolicyFacts, expires_on, policy_facts


class PostgresProjectionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def upsert_enterprise(
        self, enterprise_id: str, *, region_code: str, version: int, deleted: bool
    ) -> None:
        await self._conn.execute(
            """INSERT INTO enterprises (enterprise_id, region_code, version, deleted)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (enterprise_id) DO UPDATE SET region_code = $2, version = $3,
                   deleted = $4, updated_at = now()
               WHERE enterprises.version <= $3""",
            enterprise_id,
            region_code,
            version,
            deleted,
        )

    async def policy(self, policy_id: str) -> tuple[PolicyFacts, dict[str, Any]] | None:
        row = await self._conn.fetchrow(
            "SELECT version, document, revoked FROM policies WHERE policy_id = $1", policy_id
        )
        if row is None:
            return None
        facts = policy_facts(row["document"], version=row["version"], revoked=row["revoked"])
        return facts, row["document"]

    async def save_policy(
        self, policy_id: str, *, version: int, document: dict[str, Any], revoked: bool
    ) -> None:
        await self._conn.execute(
            """INSERT INTO policies (policy_id, version, document, revoked, expires_on)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (policy_id) DO UPDATE SET version = $2, document = $3, revoked = $4,
                   expires_on = $5, updated_at = now()""",
            policy_id,
            version,
            document,
            revoked,
            expires_on(document),
        )

    async def upsert_eligibility(self, change: dict[str, Any]) -> None:
        await self._conn.execute(
            """INSERT INTO eligibility (subject_type, subject_id, policy_id, enterprise_id,
                   policy_version, status, amount_cny)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (subject_type, subject_id, policy_id) DO UPDATE SET
                   enterprise_id = $4, policy_version = $5, status = $6, amount_cny = $7,
                   updated_at = now()""",
            change["subject_type"],
            change["subject_id"],
            change["policy_id"],
            change["enterprise_id"],
            change["policy_version"],
            change["status"],
            change.get("amount_cny"),
        )

    async def eligible(self, enterprise_id: str | None) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            """SELECT subject_type, subject_id, policy_id, enterprise_id, policy_version, status,
                   amount_cny FROM eligibility
               WHERE status = 'eligible' AND ($1::text IS NULL OR enterprise_id = $1)
               ORDER BY enterprise_id, subject_type, subject_id, policy_id""",
            enterprise_id,
        )
        return [dict(r) for r in rows]

    async def expiring(self, *, today: date, within_days: int) -> list[tuple[PolicyFacts, date]]:
        rows = await self._conn.fetch(
            """SELECT version, document, expires_on FROM policies
               WHERE NOT revoked AND expires_on BETWEEN $1 AND $2 ORDER BY policy_id""",
            today,
            today + timedelta(days=within_days),
        )
        return [(policy_facts(r["document"], version=r["version"]), r["expires_on"]) for r in rows]

    async def eligible_subjects(self, policy_id: str) -> dict[str, list[str]]:
        rows = await self._conn.fetch(
            """SELECT enterprise_id, array_agg(subject_type || ':' || subject_id
                   ORDER BY subject_type, subject_id) AS subjects
               FROM eligibility WHERE policy_id = $1 AND status = 'eligible'
               GROUP BY enterprise_id""",
            policy_id,
        )
        return {r["enterprise_id"]: list(r["subjects"]) for r in rows}
