"""The SQL migration runner against the real embedded PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from reelpolicy_common.db.migrations import (
    Migration,
    MigrationError,
    apply_migrations,
    common_migrations,
)

pytestmark = pytest.mark.servers


async def test_applies_each_file_once_and_records_it(fresh_database: str) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        extra = [Migration("svc", 1, "things", "CREATE TABLE things (id int)")]
        first = await apply_migrations(conn, common_migrations() + extra)
        assert first == [
            "common/001_outbox",
            "common/002_processed_events",
            "common/003_api_keys",
            "common/004_outbox_notify_trigger",
            "common/005_outbox_quarantine",
            "common/006_api_key_versions",
            "common/007_outbox_tombstones",
            "svc/001_things",
        ]
        assert await apply_migrations(conn, common_migrations() + extra) == []
        rows = await conn.fetch("SELECT namespace, version FROM schema_migrations ORDER BY 1, 2")
        assert [(r["namespace"], r["version"]) for r in rows] == [
            ("common", 1),
            ("common", 2),
            ("common", 3),
            ("common", 4),
            ("common", 5),
            ("common", 6),
            ("common", 7),
            ("svc", 1),
        ]
    finally:
        await conn.close()


async def test_refuses_an_applied_file_that_changed(fresh_database: str) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        await apply_migrations(conn, [Migration("svc", 1, "a", "CREATE TABLE a (id int)")])
        with pytest.raises(MigrationError, match="changed"):
            await apply_migrations(conn, [Migration("svc", 1, "a", "CREATE TABLE a (x int)")])
    finally:
        await conn.close()


async def test_a_failing_file_leaves_nothing_half_applied(fresh_database: str) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        bad = [Migration("svc", 1, "bad", "CREATE TABLE ok (id int); SELECT no_such_fn();")]
        with pytest.raises(asyncpg.PostgresError):
            await apply_migrations(conn, bad)
        assert await conn.fetchval("SELECT to_regclass('ok')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await conn.close()
