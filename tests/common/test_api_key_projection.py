"""A service's projection of ``api_key.changed``: revocation is sticky, old states lose.

Events arrive more than once and out of order (a DLQ replay, a registry republish,
a reordering): whatever the order, a revoked key stays revoked and an older version
never overwrites a newer one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from reelpolicy_common.auth import api_key_projection, find_principal, hash_api_key
from reelpolicy_common.consumer import ConsumedEvent
from reelpolicy_common.db.migrations import apply_migrations, common_migrations
from reelpolicy_contracts.events import Envelope, EventType

pytestmark = pytest.mark.servers

SECRET = "projection-test-secret"
KEY = "rp_k1_the_secret_part_of_the_key"


@dataclass
class Runtime:
    pool: asyncpg.Pool


@pytest.fixture
async def runtime(fresh_database: str) -> AsyncIterator[Runtime]:
    conn = await asyncpg.connect(fresh_database)
    try:
        await apply_migrations(conn, common_migrations())
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
    try:
        yield Runtime(pool)
    finally:
        await pool.close()


def key_event(*, revoked: bool, version: int | None, label: str = "ops") -> ConsumedEvent:
    """A newly published ``api_key.changed`` (a fresh event id, as a republish makes)."""
    payload: dict[str, Any] = {
        "key_id": "k1",
        "key_hash": hash_api_key(KEY, secret_key=SECRET),
        "role": "operator",
        "label": label,
        "revoked": revoked,
    }
    if version is not None:
        payload["version"] = version
    envelope = Envelope(
        type=EventType.api_key_changed, producer="registry", key="operator", payload=payload
    )
    return ConsumedEvent(envelope=envelope, topic="registry", partition=0, offset=0, headers={})


async def key_row(runtime: Runtime) -> asyncpg.Record:
    row = await runtime.pool.fetchrow(
        "SELECT label, version, revoked_at FROM api_keys WHERE key_id = 'k1'"
    )
    assert row is not None
    return row


async def key_works(runtime: Runtime) -> bool:
    return await find_principal(runtime.pool, key=KEY, secret_key=SECRET) is not None


async def test_an_issued_event_replayed_after_the_revocation_leaves_the_key_revoked(
    runtime: Runtime,
) -> None:
    handle = api_key_projection(runtime, consumer="test")
    await handle(key_event(revoked=False, version=1))
    assert await key_works(runtime)
    await handle(key_event(revoked=True, version=2))
    revoked_at = (await key_row(runtime))["revoked_at"]
    assert revoked_at is not None

    await handle(key_event(revoked=False, version=1))  # replayed or republished late
    await handle(key_event(revoked=False, version=None))  # from before keys had versions

    assert not await key_works(runtime)
    row = await key_row(runtime)
    assert (row["version"], row["revoked_at"]) == (2, revoked_at)


async def test_a_revocation_that_overtakes_the_issue_is_not_undone_by_it(
    runtime: Runtime,
) -> None:
    handle = api_key_projection(runtime, consumer="test")
    await handle(key_event(revoked=True, version=2))
    await handle(key_event(revoked=False, version=1))
    assert not await key_works(runtime)
    assert (await key_row(runtime))["version"] == 2


async def test_an_older_version_after_a_newer_one_changes_nothing(runtime: Runtime) -> None:
    handle = api_key_projection(runtime, consumer="test")
    await handle(key_event(revoked=False, version=3, label="current"))
    await handle(key_event(revoked=False, version=2, label="stale"))
    await handle(key_event(revoked=False, version=None, label="unversioned"))
    row = await key_row(runtime)
    assert (row["label"], row["version"], row["revoked_at"]) == ("current", 3, None)
    await handle(key_event(revoked=False, version=4, label="newer"))
    assert (await key_row(runtime))["label"] == "newer"


async def test_events_without_a_version_still_add_and_revoke_keys(runtime: Runtime) -> None:
    handle = api_key_projection(runtime, consumer="test")
    await handle(key_event(revoked=False, version=None))
    assert await key_works(runtime)
    await handle(key_event(revoked=True, version=None))
    assert not await key_works(runtime)
    await handle(key_event(revoked=False, version=1))
    assert not await key_works(runtime)


async def test_keys_stored_before_versions_get_the_version_of_their_state(
    fresh_database: str,
) -> None:
    before, versions = [], []
    for migration in common_migrations():
        (versions if migration.name == "api_key_versions" else before).append(migration)
    conn = await asyncpg.connect(fresh_database)
    try:
        await apply_migrations(conn, before)
        await conn.execute(
            "INSERT INTO api_keys (key_id, key_hash, role, revoked_at) VALUES"
            " ('live', 'h1', 'operator', NULL), ('gone', 'h2', 'operator', now())"
        )
        await apply_migrations(conn, versions)
        rows = await conn.fetch("SELECT key_id, version FROM api_keys ORDER BY key_id")
    finally:
        await conn.close()
    assert [(r["key_id"], r["version"]) for r in rows] == [("gone", 2), ("live", 1)]
