"""The registry's own ``api_keys`` table (common migration 003) on asyncpg."""

from __future__ import annotations

import asyncpg

from reelpolicy_common.auth import Role, upsert_api_key
from reelpolicy_registry.ports import ApiKeyRecord


class PostgresApiKeyRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def store(
        self,
        *,
        key_id: str,
        key_hash: str,
        role: Role,
        enterprise_id: str | None,
        label: str | None,
        revoked: bool,
        version: int,
    ) -> None:
        await upsert_api_key(
            self._conn,
            key_id=key_id,
            key_hash=key_hash,
            role=role,
            enterprise_id=enterprise_id,
            label=label,
            revoked=revoked,
            version=version,
        )

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._conn.fetchrow(_KEYS + " WHERE key_id = $1", key_id)
        return None if row is None else ApiKeyRecord(**dict(row))

    async def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = await self._conn.fetchrow(_KEYS + " WHERE key_hash = $1", key_hash)
        return None if row is None else ApiKeyRecord(**dict(row))

    async def find(self) -> list[ApiKeyRecord]:
        return [ApiKeyRecord(**dict(r)) for r in await self._conn.fetch(_KEYS + " ORDER BY key_id")]


_KEYS = (
    "SELECT key_id, key_hash, role, enterprise_id, label, created_at,"
    " revoked_at IS NOT NULL AS revoked, nullif(version, 0) AS version FROM api_keys"
)
