"""Bulk upserts: COPY into a temporary staging table, then one INSERT ... ON CONFLICT.

A row whose attributes equal the stored ones is left alone (and not returned), so
re-importing a file changes nothing; a changed row gets ``version + 1``.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from reelpolicy_registry.ports import ProductionStage

_STAGE_ENTERPRISES = """
CREATE TEMP TABLE IF NOT EXISTS stage_enterprises
    (id uuid, credit_code text, attributes text) ON COMMIT DELETE ROWS"""
_UPSERT_ENTERPRISES = """
INSERT INTO enterprises AS e (id, credit_code, attributes, region_since)
SELECT id, credit_code, attributes::jsonb,
       coalesce((attributes::jsonb ->> 'established_on')::date, current_date)
FROM stage_enterprises
ON CONFLICT (credit_code) WHERE deleted_at IS NULL DO UPDATE
SET attributes = EXCLUDED.attributes, version = e.version + 1, updated_at = now()
WHERE e.attributes IS DISTINCT FROM EXCLUDED.attributes
RETURNING e.id::text AS id, e.credit_code, e.version"""

_STAGE_PRODUCTIONS = """
CREATE TEMP TABLE IF NOT EXISTS stage_productions
    (id uuid, enterprise_id uuid, external_id text, import_key text, attributes text)
    ON COMMIT DELETE ROWS"""
_RETURNING = (
    " RETURNING p.id::text AS id, p.enterprise_id::text AS enterprise_id, p.external_id, p.version"
)
# by (enterprise, external_id): a changed row is updated
_UPSERT_PRODUCTIONS = (
    """
INSERT INTO productions AS p (id, enterprise_id, external_id, attributes)
SELECT id, enterprise_id, external_id, attributes::jsonb
FROM stage_productions WHERE external_id IS NOT NULL
ON CONFLICT (enterprise_id, external_id) WHERE deleted_at IS NULL
DO UPDATE SET attributes = EXCLUDED.attributes, version = p.version + 1, updated_at = now()
WHERE p.attributes IS DISTINCT FROM EXCLUDED.attributes"""
    + _RETURNING
)
# no external_id: the row's fingerprint; a row seen before is left alone
_INSERT_FINGERPRINTED = (
    """
INSERT INTO productions AS p (id, enterprise_id, import_key, attributes)
SELECT id, enterprise_id, import_key, attributes::jsonb
FROM stage_productions WHERE external_id IS NULL
ON CONFLICT (enterprise_id, import_key) WHERE deleted_at IS NULL AND import_key IS NOT NULL
DO NOTHING"""
    + _RETURNING
)


async def upsert_enterprises(
    conn: asyncpg.Connection, rows: list[tuple[uuid.UUID, str, str]]
) -> list[Any]:
    """Rows are (candidate id, credit code, attributes JSON); returns the changed ones."""
    await conn.execute(_STAGE_ENTERPRISES)
    await conn.execute("TRUNCATE stage_enterprises")
    await conn.copy_records_to_table(
        "stage_enterprises", records=rows, columns=["id", "credit_code", "attributes"]
    )
    return list(await conn.fetch(_UPSERT_ENTERPRISES))


async def upsert_productions(conn: asyncpg.Connection, rows: list[ProductionStage]) -> list[Any]:
    """Rows are (candidate id, enterprise id, external id, import key, attributes JSON),
    with an import key exactly when there is no external id."""
    await conn.execute(_STAGE_PRODUCTIONS)
    await conn.execute("TRUNCATE stage_productions")
    await conn.copy_records_to_table(
        "stage_productions",
        records=rows,
        columns=["id", "enterprise_id", "external_id", "import_key", "attributes"],
    )
    keyed = await conn.fetch(_UPSERT_PRODUCTIONS)
    return [*keyed, *await conn.fetch(_INSERT_FINGERPRINTED)]


async def enterprise_ids(
    conn: asyncpg.Connection, *, credit_codes: list[str], ids: list[str]
) -> tuple[dict[str, str], set[str]]:
    """Live enterprises by credit code, and which of ``ids`` are live."""
    by_code = {
        r["credit_code"]: r["id"]
        for r in await conn.fetch(
            "SELECT credit_code, id::text AS id FROM enterprises"
            " WHERE credit_code = ANY($1::text[]) AND deleted_at IS NULL",
            credit_codes,
        )
    }
    valid_ids = []
    for ident in ids:
        try:
            valid_ids.append(uuid.UUID(ident))
        except ValueError:
            continue
    live = {
        r["id"]
        for r in await conn.fetch(
            "SELECT id::text AS id FROM enterprises WHERE id = ANY($1::uuid[])"
            " AND deleted_at IS NULL",
            valid_ids,
        )
    }
    return by_code, live


class PostgresBulkLoader:
    """The bulk port on one connection (inside the unit of work's transaction)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def upsert_enterprises(self, rows: list[tuple[uuid.UUID, str, str]]) -> list[Any]:
        return await upsert_enterprises(self._conn, rows)

    async def upsert_productions(self, rows: list[ProductionStage]) -> list[Any]:
        return await upsert_productions(self._conn, rows)

    async def enterprise_ids(
        self, *, credit_codes: list[str], ids: list[str]
    ) -> tuple[dict[str, str], set[str]]:
        return await enterprise_ids(self._conn, credit_codes=credit_codes, ids=ids)
