"""The import's staging: COPY a chunk into a temporary table, then one INSERT ... ON CONFLICT.

A row whose attributes equal the stored ones is left alone (and not returned), so
re-importing a file changes nothing; a changed row gets ``version + 1``.

Productions of enterprises the import has just created cannot exist yet: they are
staged the same way and inserted by a plain ``INSERT ... SELECT``, with no conflict
handling and no join back to the staged rows (:func:`insert_new_productions`). They
are not COPied straight into ``productions`` and ``outbox``: COPY writes through a small
ring of buffers, and the relay would then read and write back more pages to publish
those outbox rows than the import saves.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from reelpolicy_common.outbox.store import lane_of, outbox_headers
from reelpolicy_common.telemetry import current_trace_headers
from reelpolicy_contracts.ids import uuid7_text
from reelpolicy_registry.domain.events import EventHead
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

_STAGED_PRODUCTION_COLUMNS = [
    "id",
    "enterprise_id",
    "external_id",
    "import_key",
    "attributes",
    "event_id",
    "lane",
]
_STAGE_PRODUCTIONS = """
CREATE TEMP TABLE IF NOT EXISTS stage_productions
    (id uuid, enterprise_id uuid, external_id text, import_key text, attributes text,
     event_id uuid, lane integer)
    ON COMMIT DELETE ROWS"""
_CHANGED = " RETURNING p.id, p.enterprise_id, p.external_id, p.version"
# by (enterprise, external_id): a changed row is updated
_UPSERT_KEYED = (
    """
INSERT INTO productions AS p (id, enterprise_id, external_id, attributes)
SELECT id, enterprise_id, external_id, attributes::jsonb
FROM stage_productions WHERE external_id IS NOT NULL
ON CONFLICT (enterprise_id, external_id) WHERE deleted_at IS NULL
DO UPDATE SET attributes = EXCLUDED.attributes, version = p.version + 1, updated_at = now()
WHERE p.attributes IS DISTINCT FROM EXCLUDED.attributes"""
    + _CHANGED
)
# no external_id: the row's fingerprint; a row seen before is left alone
_INSERT_FINGERPRINTED = (
    """
INSERT INTO productions AS p (id, enterprise_id, import_key, attributes)
SELECT id, enterprise_id, import_key, attributes::jsonb
FROM stage_productions WHERE external_id IS NULL
ON CONFLICT (enterprise_id, import_key) WHERE deleted_at IS NULL AND import_key IS NOT NULL
DO NOTHING"""
    + _CHANGED
)
# The envelope of a production.upserted event, from a row of ``changed`` or of
# ``stage_productions`` (below), built by concatenation (no JSON parsing, so cheaper
# than json_build_object): every piece but the staged
# attributes is a uuid, an integer or one of the head's constants, and the attributes
# are the JSON text the import validated, so the value is the envelope's JSON with its
# fields in the contract's order (``tests/registry`` decode them against
# ``production_event``).
_ENVELOPE = """convert_to(
        '{{"event_id":"' || event_id || '","type":"' || $2 || '","schema_version":' || $3
        || ',"occurred_at":"' || $4 || '","producer":"' || $5 || '","key":"' || enterprise_id
        || '","payload":{{"production_id":"' || id || '","enterprise_id":"' || enterprise_id
        || '","version":' || {version} || ',"deleted":false,"attributes":' || attributes
        || '}}}}', 'UTF8')"""
# Upserted rows: one event per new or changed one.
_QUEUE_EVENTS = f"""
WITH keyed AS ({_UPSERT_KEYED}), fingerprinted AS ({_INSERT_FINGERPRINTED}),
changed AS (
    SELECT c.*, s.event_id, s.lane, s.attributes FROM keyed c JOIN stage_productions s
        ON s.enterprise_id = c.enterprise_id AND s.external_id = c.external_id
    UNION ALL
    SELECT c.*, s.event_id, s.lane, s.attributes FROM fingerprinted c
        JOIN stage_productions s ON s.id = c.id
),
queued AS (
    INSERT INTO outbox (event_id, topic, key, lane, event_type, value, headers)
    SELECT event_id, $1, enterprise_id::text, lane, $2, {_ENVELOPE.format(version="version")},
        $6::jsonb
    FROM changed
    RETURNING 1
)
SELECT count(*) FROM queued"""
# Rows that cannot exist yet: all are inserted, each at version 1 with its event.
_INSERT_NEW = f"""
WITH inserted AS (
    INSERT INTO productions (id, enterprise_id, external_id, import_key, attributes)
    SELECT id, enterprise_id, external_id, import_key, attributes::jsonb FROM stage_productions
)
INSERT INTO outbox (event_id, topic, key, lane, event_type, value, headers)
SELECT event_id, $1, enterprise_id::text, lane, $2, {_ENVELOPE.format(version="1")}, $6::jsonb
FROM stage_productions"""


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


async def _stage_productions(conn: asyncpg.Connection, rows: list[ProductionStage]) -> None:
    await conn.execute(_STAGE_PRODUCTIONS)
    await conn.execute("TRUNCATE stage_productions")
    records = (  # each with the event id and outbox lane its event gets, if any
        (
            ident,
            enterprise_id,
            external_id,
            import_key,
            attributes.decode(),
            uuid7_text(),
            lane_of(enterprise_id),
        )
        for ident, enterprise_id, external_id, import_key, attributes in rows
    )
    await conn.copy_records_to_table(
        "stage_productions", records=records, columns=_STAGED_PRODUCTION_COLUMNS
    )


def _head(events: EventHead) -> tuple[str, str, str, str, str, dict[str, str]]:
    """The statements' parameters $1..$6; the outbox rows' headers are what every writer
    of the outbox stores (the current trace context, the event's type and version)."""
    headers = outbox_headers(
        current_trace_headers(), event_type=events.event_type, schema_version=events.schema_version
    )
    return (
        events.topic,
        events.event_type,
        str(events.schema_version),
        events.occurred_at,
        events.producer,
        headers,
    )


async def upsert_productions(
    conn: asyncpg.Connection, rows: list[ProductionStage], *, events: EventHead
) -> int:
    """Store new and changed rows and queue one outbox event for each (same statement);
    returns how many there were. Rows: see :data:`ProductionStage`."""
    await _stage_productions(conn, rows)
    changed: int = await conn.fetchval(_QUEUE_EVENTS, *_head(events))
    return changed


async def insert_new_productions(
    conn: asyncpg.Connection, rows: list[ProductionStage], *, events: EventHead
) -> bool:
    """Insert rows no production can match yet (of enterprises this import created),
    each at version 1 with its event, in a savepoint: if one exists after all (created
    meanwhile through the API), nothing is stored and the answer is False, for the
    caller to upsert the rows instead."""
    await _stage_productions(conn, rows)
    try:
        async with conn.transaction():
            await conn.execute(_INSERT_NEW, *_head(events))
    except asyncpg.UniqueViolationError:
        return False
    return True


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


class PostgresImportStaging:
    """The import's staging port on one connection (inside the unit of work's
    transaction)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def upsert_enterprises(self, rows: list[tuple[uuid.UUID, str, str]]) -> list[Any]:
        return await upsert_enterprises(self._conn, rows)

    async def upsert_productions(self, rows: list[ProductionStage], *, events: EventHead) -> int:
        return await upsert_productions(self._conn, rows, events=events)

    async def insert_new_productions(
        self, rows: list[ProductionStage], *, events: EventHead
    ) -> bool:
        return await insert_new_productions(self._conn, rows, events=events)

    async def enterprise_ids(
        self, *, credit_codes: list[str], ids: list[str]
    ) -> tuple[dict[str, str], set[str]]:
        return await enterprise_ids(self._conn, credit_codes=credit_codes, ids=ids)
