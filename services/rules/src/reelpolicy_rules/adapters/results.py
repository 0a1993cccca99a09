"""The results repository: current results (eligible / unknown only) and their history."""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import polars as pl

from reelpolicy_rules.domain.outcome_frames import OUTCOME_SCHEMA
from reelpolicy_rules.domain.outcomes import Key, Outcome

RESULT_COLUMNS = [
    "subject_type",
    "subject_id",
    "policy_id",
    "enterprise_id",
    "policy_version",
    "status",
    "amount_cny",
    "missing_fields",
    "explanation",
]
HISTORY_COLUMNS = [
    "subject_id",
    "policy_id",
    "enterprise_id",
    "policy_version",
    "previous_status",
    "status",
    "previous_amount_cny",
    "amount_cny",
    "cause",
    "event_id",
]
_UPSERT = """INSERT INTO results ({cols}) {source}
    ON CONFLICT (subject_id, policy_id) DO UPDATE SET
      subject_type = EXCLUDED.subject_type, enterprise_id = EXCLUDED.enterprise_id,
      policy_version = EXCLUDED.policy_version, status = EXCLUDED.status,
      amount_cny = EXCLUDED.amount_cny, missing_fields = EXCLUDED.missing_fields,
      explanation = EXCLUDED.explanation, updated_at = now()"""
_COLS = ", ".join(RESULT_COLUMNS)


def _outcome(row: Any) -> Outcome:
    return Outcome(
        subject_type=row["subject_type"],
        subject_id=row["subject_id"],
        enterprise_id=row["enterprise_id"],
        policy_id=row["policy_id"],
        policy_version=row["policy_version"],
        status=row["status"],
        amount_cny=row["amount_cny"],
        missing_fields=list(row["missing_fields"]),
        explanation=row["explanation"],
    )


class PostgresResultRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def for_subjects(self, subject_ids: Sequence[str]) -> dict[Key, Outcome]:
        rows = await self._conn.fetch(
            f"SELECT {_COLS} FROM results WHERE subject_id = ANY($1::text[])", list(subject_ids)
        )
        return {(r["subject_id"], r["policy_id"]): _outcome(r) for r in rows}

    async def committed(self, policy_ids: Sequence[str]) -> dict[str, int]:
        """policy id -> yuan its eligible results hold (policies holding nothing are absent)."""
        rows = await self._conn.fetch(
            "SELECT policy_id, sum(amount_cny) AS held FROM results"
            " WHERE policy_id = ANY($1::text[]) AND status = 'eligible' AND amount_cny > 0"
            " GROUP BY policy_id",
            list(policy_ids),
        )
        return {r["policy_id"]: int(r["held"]) for r in rows}

    async def frame_for_policies(self, policy_ids: Sequence[str]) -> pl.DataFrame:
        """Stored results of ``policy_ids`` as a frame (``COPY`` to CSV, read by polars)."""
        ids = ",".join("'" + p.replace("'", "''") + "'" for p in policy_ids) or "NULL"
        buffer = io.BytesIO()
        await self._conn.copy_from_query(
            "SELECT subject_type, subject_id, enterprise_id, policy_id, status, amount_cny,"
            " array_to_string(missing_fields, ',') AS missing"
            f" FROM results WHERE policy_id IN ({ids})",
            output=buffer,
            format="csv",
            header=True,
        )
        schema = {k: v for k, v in OUTCOME_SCHEMA.items() if k != "missing_fields"}
        df = pl.read_csv(buffer.getvalue(), schema={**schema, "missing": pl.String})
        missing = pl.when(pl.col("missing").is_null() | (pl.col("missing") == ""))
        return df.with_columns(
            missing.then(pl.lit([], pl.List(pl.String)))
            .otherwise(pl.col("missing").str.split(","))
            .alias("missing_fields")
        ).select(list(OUTCOME_SCHEMA))

    async def upsert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows in :data:`RESULT_COLUMNS` order; many rows go through ``COPY``."""
        if not rows:
            return
        if len(rows) < 200:
            params = ", ".join(f"${i + 1}" for i in range(len(RESULT_COLUMNS)))
            sql = _UPSERT.format(cols=_COLS, source=f"VALUES ({params})")
            await self._conn.executemany(sql, rows)
            return
        await self._conn.execute(
            "CREATE TEMP TABLE rules_upsert (LIKE results INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        await self._conn.copy_records_to_table("rules_upsert", records=rows, columns=RESULT_COLUMNS)
        sql = _UPSERT.format(cols=_COLS, source=f"SELECT {_COLS} FROM rules_upsert")
        await self._conn.execute(sql)

    async def replace(self, deletes: Sequence[Key], rows: Sequence[tuple[Any, ...]]) -> None:
        """Delete ``deletes`` and store ``rows`` (:data:`RESULT_COLUMNS` order).

        Many rows: one ``DELETE`` of every touched key, then ``COPY`` straight into
        ``results`` (no temporary table, no ``ON CONFLICT``); few rows: an upsert.
        """
        if len(rows) < 200:
            await self.delete(deletes)
            await self.upsert(rows)
            return
        await self.delete([*deletes, *((r[1], r[2]) for r in rows)])
        await self._conn.copy_records_to_table("results", records=rows, columns=RESULT_COLUMNS)

    async def delete(self, keys: Sequence[Key]) -> None:
        if not keys:
            return
        await self._conn.execute(
            "DELETE FROM results r USING unnest($1::text[], $2::text[]) AS d(s, p)"
            " WHERE r.subject_id = d.s AND r.policy_id = d.p",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )

    async def add_history(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            await self._conn.copy_records_to_table(
                "result_history", records=rows, columns=HISTORY_COLUMNS
            )

    async def known_changes(self, changes: Sequence[tuple[str, str, uuid.UUID]]) -> set[uuid.UUID]:
        # looked up by (subject, policy), which the history is indexed by: an index on
        # event_id alone would slow every change down for a query made only after a restore
        rows = await self._conn.fetch(
            "SELECT DISTINCT h.event_id FROM unnest($1::text[], $2::text[], $3::uuid[])"
            " AS c(subject_id, policy_id, event_id)"
            " JOIN result_history h USING (subject_id, policy_id, event_id)",
            [c[0] for c in changes],
            [c[1] for c in changes],
            [c[2] for c in changes],
        )
        return {r["event_id"] for r in rows}

    async def for_enterprise(
        self, enterprise_id: str, *, subject_id: str | None = None
    ) -> list[asyncpg.Record]:
        return list(
            await self._conn.fetch(
                f"SELECT {_COLS.replace('policy_version', 'r.policy_version')},"
                " p.version AS current_version FROM results r"
                " LEFT JOIN policies p USING (policy_id)"
                " WHERE r.enterprise_id = $1 AND ($2::text IS NULL OR r.subject_id = $2)"
                " ORDER BY r.subject_type, r.subject_id, r.policy_id",
                enterprise_id,
                subject_id,
            )
        )

    async def policies_other_than(self, policy_ids: Sequence[str]) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT policy_id FROM results WHERE NOT (policy_id = ANY($1::text[]))",
            list(policy_ids),
        )
        return [r["policy_id"] for r in rows]

    async def history(self, subject_id: str, policy_id: str) -> list[asyncpg.Record]:
        return list(
            await self._conn.fetch(
                "SELECT * FROM result_history WHERE subject_id = $1 AND policy_id = $2 ORDER BY id",
                subject_id,
                policy_id,
            )
        )
