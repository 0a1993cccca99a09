"""Numbered ``.sql`` migrations, applied by an explicit command before a service starts.

Each service ships ``NNN_name.sql`` files in its package's ``migrations`` folder; the
shared tables (outbox, processed events) come from ``reelpolicy_common.migrations``.
Applied files are recorded in ``schema_migrations`` with a checksum; an applied file
that later changes is refused rather than silently re-run. One advisory lock makes
concurrent runners (two replicas starting) take turns.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x5EE1_0001


@dataclass(frozen=True)
class Migration:
    namespace: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def discover(package: str, *, namespace: str) -> list[Migration]:
    """The migrations in ``package`` (a package holding ``NNN_name.sql`` files)."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(
                Migration(namespace, int(match[1]), match[2], entry.read_text(encoding="utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {package}")
    return found


def common_migrations() -> list[Migration]:
    return discover("reelpolicy_common.migrations", namespace="common")


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply what is not applied yet, each file in its own transaction; return their names."""
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               namespace text NOT NULL, version integer NOT NULL, name text NOT NULL,
               checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
               PRIMARY KEY (namespace, version))"""
    )
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        rows = await conn.fetch("SELECT namespace, version, checksum FROM schema_migrations")
        done = {(r["namespace"], r["version"]): r["checksum"] for r in rows}
        for migration in migrations:
            key = (migration.namespace, migration.version)
            label = f"{migration.namespace}/{migration.version:03d}_{migration.name}"
            if key in done:
                if done[key] != migration.checksum:
                    raise MigrationError(f"{label} changed after it was applied")
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (namespace, version, name, checksum)"
                    " VALUES ($1, $2, $3, $4)",
                    migration.namespace,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("applied migration %s", label)
            applied_now.append(label)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
