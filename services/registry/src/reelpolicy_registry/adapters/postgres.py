"""Enterprise, production, API-key and portal-link repositories and the unit of work on asyncpg."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg

from reelpolicy_common.auth import Role, upsert_api_key
from reelpolicy_common.uow import PostgresUnitOfWork
from reelpolicy_contracts.ids import uuid7
from reelpolicy_registry.adapters.import_staging import PostgresImportStaging
from reelpolicy_registry.domain.api_keys import ApiKeyRecord
from reelpolicy_registry.domain.errors import DuplicateError
from reelpolicy_registry.domain.records import StoredEnterprise, StoredProduction

_ENTERPRISE_COLUMNS = (
    " id::text, version, attributes, region_since, created_at, updated_at,"
    " deleted_at IS NOT NULL AS deleted"
)
_PRODUCTION_COLUMNS = (
    " id::text, version, attributes, created_at, updated_at, deleted_at IS NOT NULL AS deleted"
)
_ENTERPRISE = f"SELECT{_ENTERPRISE_COLUMNS} FROM enterprises"
_PRODUCTION = f"SELECT{_PRODUCTION_COLUMNS} FROM productions"
_API_KEYS = (
    "SELECT key_id, key_hash, role, enterprise_id, label, created_at,"
    " revoked_at IS NOT NULL AS revoked, nullif(version, 0) AS version FROM api_keys"
)


def _enterprise(row: Any) -> StoredEnterprise:
    return StoredEnterprise(
        row["id"],
        row["version"],
        row["attributes"],
        row["region_since"],
        row["created_at"],
        row["updated_at"],
        row["deleted"],
    )


def _production(row: Any) -> StoredProduction:
    return StoredProduction(
        row["id"],
        row["version"],
        row["attributes"],
        row["created_at"],
        row["updated_at"],
        row["deleted"],
    )


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class _Where:
    """A WHERE clause built from optional filters, with numbered parameters."""

    clauses: list[str] = field(default_factory=lambda: ["deleted_at IS NULL"])
    params: list[Any] = field(default_factory=list)

    def add(self, sql: str, value: Any) -> None:
        if value is not None:
            self.params.append(value)
            self.clauses.append(sql.replace("$?", f"${len(self.params)}"))

    def page(self, base: str, *, after: str | None, limit: int) -> tuple[str, list[Any]]:
        self.add("id > $?::uuid", after)
        self.params.append(limit)
        sql = f"{base} WHERE {' AND '.join(self.clauses)} ORDER BY id LIMIT ${len(self.params)}"
        return sql, self.params


class PostgresEnterpriseRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def get(self, enterprise_id: str, *, for_update: bool = False) -> StoredEnterprise | None:
        if not _is_uuid(enterprise_id):
            return None
        sql = _ENTERPRISE + " WHERE id = $1::uuid AND deleted_at IS NULL"
        row = await self._conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), enterprise_id)
        return None if row is None else _enterprise(row)

    async def add(
        self, attributes: dict[str, Any], *, region_since: date | None
    ) -> StoredEnterprise:
        try:
            row = await self._conn.fetchrow(
                "INSERT INTO enterprises (id, credit_code, attributes, region_since)"
                " VALUES ($1, $2, $3, $4) RETURNING" + _ENTERPRISE_COLUMNS,
                uuid7(),
                attributes["credit_code"],
                attributes,
                region_since,
            )
        except asyncpg.UniqueViolationError:
            raise DuplicateError(
                "credit_code", "an enterprise with this credit code exists"
            ) from None
        return _enterprise(row)

    async def update(
        self, enterprise_id: str, attributes: dict[str, Any], *, region_since: date | None
    ) -> StoredEnterprise:
        try:
            row = await self._conn.fetchrow(
                "UPDATE enterprises SET attributes = $2, credit_code = $3, region_since = $4,"
                " version = version + 1, updated_at = now() WHERE id = $1::uuid RETURNING"
                + _ENTERPRISE_COLUMNS,
                enterprise_id,
                attributes,
                attributes["credit_code"],
                region_since,
            )
        except asyncpg.UniqueViolationError:
            raise DuplicateError(
                "credit_code", "an enterprise with this credit code exists"
            ) from None
        return _enterprise(row)

    async def soft_delete(self, enterprise_id: str) -> StoredEnterprise:
        row = await self._conn.fetchrow(
            "UPDATE enterprises SET deleted_at = now(), version = version + 1, updated_at = now()"
            " WHERE id = $1::uuid RETURNING" + _ENTERPRISE_COLUMNS,
            enterprise_id,
        )
        return _enterprise(row)

    async def find(
        self,
        *,
        only_id: str | None = None,
        region_prefix: str | None = None,
        kind: str | None = None,
        tag: str | None = None,
        q: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[StoredEnterprise]:
        where = _Where()
        where.add("id = $?::uuid", only_id)
        where.add("attributes->>'region_code' LIKE $? || '%'", region_prefix)
        where.add("attributes->>'kind' = $?", kind)
        where.add("attributes->'tags' ? $?", tag)
        where.add("attributes->>'name' ILIKE $?", None if q is None else _like(q))
        sql, params = where.page(_ENTERPRISE, after=after, limit=limit)
        return [_enterprise(r) for r in await self._conn.fetch(sql, *params)]

    async def snapshots(self, *, after: str | None, limit: int) -> list[StoredEnterprise]:
        """Every enterprise, deleted ones included, in id order."""
        rows = await self._conn.fetch(
            _ENTERPRISE + " WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2",
            after,
            limit,
        )
        return [_enterprise(r) for r in rows]


class PostgresProductionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def get(self, production_id: str, *, for_update: bool = False) -> StoredProduction | None:
        if not _is_uuid(production_id):
            return None
        sql = _PRODUCTION + " WHERE id = $1::uuid AND deleted_at IS NULL"
        row = await self._conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), production_id)
        return None if row is None else _production(row)

    async def add(self, attributes: dict[str, Any]) -> StoredProduction:
        try:
            row = await self._conn.fetchrow(
                "INSERT INTO productions (id, enterprise_id, external_id, attributes)"
                " VALUES ($1, $2::uuid, $3, $4) RETURNING" + _PRODUCTION_COLUMNS,
                uuid7(),
                attributes["enterprise_id"],
                attributes.get("external_id"),
                attributes,
            )
        except asyncpg.UniqueViolationError:
            raise DuplicateError(
                "external_id", "the enterprise has a production with this external_id"
            ) from None
        return _production(row)

    async def update(self, production_id: str, attributes: dict[str, Any]) -> StoredProduction:
        try:
            row = await self._conn.fetchrow(
                "UPDATE productions SET attributes = $2, external_id = $3, version = version + 1,"
                " updated_at = now() WHERE id = $1::uuid RETURNING" + _PRODUCTION_COLUMNS,
                production_id,
                attributes,
                attributes.get("external_id"),
            )
        except asyncpg.UniqueViolationError:
            raise DuplicateError(
                "external_id", "the enterprise has a production with this external_id"
            ) from None
        return _production(row)

    async def count_live(self, enterprise_id: str) -> int:
        count: int = await self._conn.fetchval(
            "SELECT count(*) FROM productions WHERE enterprise_id = $1::uuid"
            " AND deleted_at IS NULL",
            enterprise_id,
        )
        return count

    async def soft_delete(self, production_id: str) -> StoredProduction:
        row = await self._conn.fetchrow(
            "UPDATE productions SET deleted_at = now(), version = version + 1, updated_at = now()"
            " WHERE id = $1::uuid RETURNING" + _PRODUCTION_COLUMNS,
            production_id,
        )
        return _production(row)

    async def soft_delete_of_enterprise(self, enterprise_id: str) -> list[StoredProduction]:
        rows = await self._conn.fetch(
            "UPDATE productions SET deleted_at = now(), version = version + 1, updated_at = now()"
            " WHERE enterprise_id = $1::uuid AND deleted_at IS NULL RETURNING"
            + _PRODUCTION_COLUMNS,
            enterprise_id,
        )
        return sorted((_production(r) for r in rows), key=lambda p: p.id)

    async def find(
        self,
        *,
        enterprise_id: str | None = None,
        region_prefix: str | None = None,
        platform: str | None = None,
        theme: str | None = None,
        content_status: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[StoredProduction]:
        where = _Where()
        where.add("enterprise_id = $?::uuid", enterprise_id)
        where.add("attributes->>'region_code' LIKE $? || '%'", region_prefix)
        where.add("attributes->'platforms' ? $?", platform)
        where.add("attributes->'themes' ? $?", theme)
        where.add("attributes->>'content_status' = $?", content_status)
        sql, params = where.page(_PRODUCTION, after=after, limit=limit)
        return [_production(r) for r in await self._conn.fetch(sql, *params)]

    async def snapshots(self, *, after: str | None, limit: int) -> list[StoredProduction]:
        rows = await self._conn.fetch(
            _PRODUCTION + " WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2",
            after,
            limit,
        )
        return [_production(r) for r in rows]


class PostgresApiKeyRepository:
    """The registry's own ``api_keys`` table (common migration 003)."""

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
        row = await self._conn.fetchrow(_API_KEYS + " WHERE key_id = $1", key_id)
        return None if row is None else ApiKeyRecord(**dict(row))

    async def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = await self._conn.fetchrow(_API_KEYS + " WHERE key_hash = $1", key_hash)
        return None if row is None else ApiKeyRecord(**dict(row))

    async def find(self) -> list[ApiKeyRecord]:
        return [
            ApiKeyRecord(**dict(r)) for r in await self._conn.fetch(_API_KEYS + " ORDER BY key_id")
        ]


class PostgresPortalLinkRepository:
    """The registry's ``portal_links`` table (migration 004)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(
        self, *, token_hash: str, enterprise_id: str, created_at: datetime, expires_at: datetime
    ) -> None:
        await self._conn.execute(
            "INSERT INTO portal_links (token_hash, enterprise_id, created_at, expires_at)"
            " VALUES ($1, $2::uuid, $3, $4)",
            token_hash,
            enterprise_id,
            created_at,
            expires_at,
        )

    async def claim(self, token_hash: str, *, now: datetime) -> str | None:
        # a concurrent claim waits for this row's lock, then finds redeemed_at set
        enterprise_id: str | None = await self._conn.fetchval(
            "UPDATE portal_links SET redeemed_at = $2"
            " WHERE token_hash = $1 AND redeemed_at IS NULL AND expires_at > $2"
            " RETURNING enterprise_id::text",
            token_hash,
            now,
        )
        return enterprise_id

    async def record_key(self, token_hash: str, key_id: str) -> None:
        await self._conn.execute(
            "UPDATE portal_links SET key_id = $2 WHERE token_hash = $1", token_hash, key_id
        )


class RegistryUnitOfWork(PostgresUnitOfWork):
    enterprises: PostgresEnterpriseRepository
    productions: PostgresProductionRepository
    api_keys: PostgresApiKeyRepository
    portal_links: PostgresPortalLinkRepository
    import_staging: PostgresImportStaging

    async def __aenter__(self) -> RegistryUnitOfWork:
        await super().__aenter__()
        self.import_staging = PostgresImportStaging(self.conn)
        self.enterprises = PostgresEnterpriseRepository(self.conn)
        self.productions = PostgresProductionRepository(self.conn)
        self.api_keys = PostgresApiKeyRepository(self.conn)
        self.portal_links = PostgresPortalLinkRepository(self.conn)
        return self
