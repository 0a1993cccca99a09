"""The projection repository: policies, enterprises, productions (asyncpg)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg
import polars as pl

PROJECTION_LOCK = 0x5EE2  # advisory lock class: bulk runs (exclusive) vs subject updates (shared)
_ENTERPRISE = 0x5EE3
_FUND = 0x5EE4


async def _copy_frame(
    conn: asyncpg.Connection, query: str, schema: dict[str, object]
) -> pl.DataFrame:
    buffer = io.BytesIO()
    await conn.copy_from_query(query, output=buffer, format="csv", header=True)
    # parsed off the event loop: a full load is a million rows
    frame: pl.DataFrame = await asyncio.to_thread(
        pl.read_csv,
        buffer.getvalue(),
        schema=schema,  # type: ignore[arg-type]
    )
    return frame


class PostgresProjectionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock_all(self) -> None:
        """Exclusive: no subject update runs (or holds an uncommitted seq) meanwhile."""
        await self._conn.execute("SELECT pg_advisory_xact_lock($1, 0)", PROJECTION_LOCK)

    async def lock_enterprises(self, enterprise_ids: Sequence[str]) -> None:
        """The shared projection lock, then each enterprise's lock in the order given.

        Callers pass the ids sorted, so two transactions always lock in one order.
        """
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock_shared($1, 0)"
            " UNION ALL SELECT pg_advisory_xact_lock($2, hashtext(e))"
            " FROM unnest($3::text[]) AS e",
            PROJECTION_LOCK,
            _ENTERPRISE,
            list(enterprise_ids),
        )

    async def lock_funds(self, fund_ids: Sequence[str]) -> None:
        """Each fund's lock, in the order given (pass them sorted)."""
        if fund_ids:
            await self._conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext(f)) FROM unnest($2::text[]) AS f",
                _FUND,
                list(fund_ids),
            )

    async def clear(self) -> None:
        await self._conn.execute("TRUNCATE policies, enterprises, productions")

    async def policy_state(self, policy_id: str) -> tuple[int, bool] | None:
        row = await self._conn.fetchrow(
            "SELECT version, revoked FROM policies WHERE policy_id = $1", policy_id
        )
        return None if row is None else (row["version"], row["revoked"])

    async def store_policy(self, policy_id: str, version: int, document: dict[str, Any]) -> None:
        await self._conn.execute(
            """INSERT INTO policies (policy_id, version, document) VALUES ($1, $2, $3)
               ON CONFLICT (policy_id) DO UPDATE SET version = $2, document = $3,
                 revoked = false, seq = nextval('rules_change_seq'), updated_at = now()""",
            policy_id,
            version,
            document,
        )

    async def revoke_policy(self, policy_id: str) -> None:
        await self._conn.execute(
            "UPDATE policies SET revoked = true, seq = nextval('rules_change_seq'),"
            " updated_at = now() WHERE policy_id = $1",
            policy_id,
        )

    async def latest_seqs(self) -> tuple[int, int]:
        """The largest seq of the policies and of the subjects this transaction sees."""
        row = await self._conn.fetchrow(
            "SELECT coalesce((SELECT max(seq) FROM policies), 0) AS policies,"
            " greatest((SELECT max(seq) FROM enterprises), (SELECT max(seq) FROM productions),"
            " 0) AS subjects"
        )
        assert row is not None
        return int(row["policies"]), int(row["subjects"])

    async def policies_since(self, seq: int) -> list[asyncpg.Record]:
        return list(
            await self._conn.fetch(
                "SELECT policy_id, version, document, revoked, seq FROM policies"
                " WHERE seq > $1 ORDER BY seq",
                seq,
            )
        )

    async def subjects_since(self, seq: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Enterprises and productions written after ``seq`` (``COPY`` to CSV, read by polars)."""
        enterprises = await _copy_frame(
            self._conn,
            "SELECT enterprise_id, deleted::text, attributes::text AS attributes, seq FROM enterprises"
            f" WHERE seq > {int(seq)}",
            {
                "enterprise_id": pl.String,
                "deleted": pl.Boolean,
                "attributes": pl.String,
                "seq": pl.Int64,
            },
        )
        productions = await _copy_frame(
            self._conn,
            "SELECT production_id, enterprise_id, deleted::text, attributes::text AS attributes, seq"
            f" FROM productions WHERE seq > {int(seq)}",
            {
                "production_id": pl.String,
                "enterprise_id": pl.String,
                "deleted": pl.Boolean,
                "attributes": pl.String,
                "seq": pl.Int64,
            },
        )
        return enterprises, productions

    async def versions(
        self, *, enterprise_ids: Sequence[str], production_ids: Sequence[str]
    ) -> dict[tuple[str, str], int]:
        """Stored versions: ("enterprise" | "production", id) -> version (absent: none)."""
        rows = await self._conn.fetch(
            "SELECT 'enterprise' AS kind, enterprise_id AS id, version FROM enterprises"
            " WHERE enterprise_id = ANY($1::text[])"
            " UNION ALL SELECT 'production', production_id, version FROM productions"
            " WHERE production_id = ANY($2::text[])",
            list(enterprise_ids),
            list(production_ids),
        )
        return {(r["kind"], r["id"]): r["version"] for r in rows}

    async def store_enterprises(
        self, rows: Sequence[tuple[str, int, bool, dict[str, Any]]]
    ) -> None:
        """Upsert (enterprise_id, version, deleted, attributes) rows."""
        if rows:
            await self._conn.executemany(
                """INSERT INTO enterprises (enterprise_id, version, deleted, attributes)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (enterprise_id) DO UPDATE SET version = $2, deleted = $3,
                     attributes = $4, seq = nextval('rules_change_seq')""",
                rows,
            )

    async def store_productions(
        self, rows: Sequence[tuple[str, str, int, bool, dict[str, Any]]]
    ) -> None:
        """Upsert (production_id, enterprise_id, version, deleted, attributes) rows."""
        if rows:
            await self._conn.executemany(
                """INSERT INTO productions
                     (production_id, enterprise_id, version, deleted, attributes)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (production_id) DO UPDATE SET enterprise_id = $2,
                     version = $3, deleted = $4, attributes = $5,
                     seq = nextval('rules_change_seq')""",
                rows,
            )

    async def enterprises(self, enterprise_ids: Sequence[str]) -> dict[str, asyncpg.Record]:
        rows = await self._conn.fetch(
            "SELECT enterprise_id, deleted, attributes FROM enterprises"
            " WHERE enterprise_id = ANY($1::text[])",
            list(enterprise_ids),
        )
        return {r["enterprise_id"]: r for r in rows}

    async def productions_for(
        self, *, enterprise_ids: Sequence[str], production_ids: Sequence[str]
    ) -> list[asyncpg.Record]:
        """Every production of ``enterprise_ids``, and the ``production_ids`` ones."""
        return list(
            await self._conn.fetch(
                "SELECT production_id, enterprise_id, deleted, attributes FROM productions"
                " WHERE enterprise_id = ANY($1::text[]) OR production_id = ANY($2::text[])"
                " ORDER BY production_id",
                list(enterprise_ids),
                list(production_ids),
            )
        )

    async def enterprise(self, enterprise_id: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._conn.fetchrow(
            "SELECT enterprise_id, deleted, attributes FROM enterprises WHERE enterprise_id = $1",
            enterprise_id,
        )
        return row

    async def productions_of(
        self, enterprise_id: str, *, only: str | None = None
    ) -> list[asyncpg.Record]:
        return list(
            await self._conn.fetch(
                "SELECT production_id, enterprise_id, deleted, attributes FROM productions"
                " WHERE enterprise_id = $1 AND ($2::text IS NULL OR production_id = $2)"
                " ORDER BY production_id",
                enterprise_id,
                only,
            )
        )

    async def enterprise_of_production(self, production_id: str) -> str | None:
        v: str | None = await self._conn.fetchval(
            "SELECT enterprise_id FROM productions WHERE production_id = $1", production_id
        )
        return v

    async def last_day(self) -> date | None:
        day: date | None = await self._conn.fetchval(
            "SELECT last_day FROM clock_state WHERE id = 1"
        )
        return day

    async def set_last_day(self, day: date) -> None:
        await self._conn.execute(
            "INSERT INTO clock_state (id, last_day) VALUES (1, $1)"
            " ON CONFLICT (id) DO UPDATE SET last_day = $1",
            day,
        )
