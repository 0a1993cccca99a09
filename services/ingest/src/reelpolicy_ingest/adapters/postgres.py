"""The policy repository and unit of work on asyncpg."""

from __future__ import annotations

from typing import Any

import asyncpg

from reelpolicy_common.uow import PostgresUnitOfWork
from reelpolicy_ingest.domain import StoredPolicy

_SELECT = """
    SELECT v.policy_id, v.version, v.document, v.content_sha, p.revoked_at IS NOT NULL AS revoked
    FROM policy_versions v JOIN policies p USING (policy_id)
"""


def _stored(row: Any) -> StoredPolicy:
    return StoredPolicy(
        row["policy_id"], row["version"], row["document"], row["content_sha"], row["revoked"]
    )


class PostgresPolicyRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock(self, policy_id: str) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", policy_id)

    async def latest(self, policy_id: str) -> StoredPolicy | None:
        row = await self._conn.fetchrow(
            _SELECT + " WHERE p.policy_id = $1 AND v.version = p.latest_version", policy_id
        )
        return None if row is None else _stored(row)

    async def version(self, policy_id: str, version: int) -> StoredPolicy | None:
        row = await self._conn.fetchrow(
            _SELECT + " WHERE v.policy_id = $1 AND v.version = $2", policy_id, version
        )
        return None if row is None else _stored(row)

    async def add_version(self, policy: StoredPolicy) -> None:
        await self._conn.execute(
            "INSERT INTO policy_versions (policy_id, version, document, content_sha)"
            " VALUES ($1, $2, $3, $4)",
            policy.policy_id,
            policy.version,
            policy.document,
            policy.content_sha,
        )
        await self._conn.execute(
            """INSERT INTO policies (policy_id, latest_version) VALUES ($1, $2)
               ON CONFLICT (policy_id) DO UPDATE
               SET latest_version = $2, revoked_at = NULL, updated_at = now()""",
            policy.policy_id,
            policy.version,
        )

    async def set_revoked(self, policy_id: str, *, revoked: bool) -> None:
        await self._conn.execute(
            "UPDATE policies SET revoked_at = CASE WHEN $2 THEN now() END, updated_at = now()"
            " WHERE policy_id = $1",
            policy_id,
            revoked,
        )

    async def list_latest(self, *, after: str | None, limit: int) -> list[StoredPolicy]:
        rows = await self._conn.fetch(
            _SELECT
            + " WHERE v.version = p.latest_version AND ($1::text IS NULL OR p.policy_id > $1)"
            " ORDER BY p.policy_id LIMIT $2",
            after,
            limit,
        )
        return [_stored(r) for r in rows]


class IngestUnitOfWork(PostgresUnitOfWork):
    policies: PostgresPolicyRepository

    async def __aenter__(self) -> IngestUnitOfWork:
        await super().__aenter__()
        self.policies = PostgresPolicyRepository(self.conn)
        return self
