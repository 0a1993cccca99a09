"""Expired sessions are deleted while the portal runs, by its supervised background
task, not only when a process starts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import pytest
from cryptography.fernet import Fernet
from portal_stack import SESSION_SECRET

from reelpolicy_devstack.servers import EmbeddedPostgres, database_uri, ensure_database
from reelpolicy_portal.bootstrap import SESSION_PRUNE_TASK, bootstrap
from reelpolicy_portal.config import Settings
from service_harness import eventually, migrate_service, settings_for

pytestmark = pytest.mark.servers


async def test_expired_sessions_are_deleted_on_a_schedule_and_live_ones_stay(
    embedded_postgres: EmbeddedPostgres,
) -> None:
    admin = embedded_postgres.uri()
    database = f"portal_prune_{uuid.uuid4().hex[:8]}"
    await ensure_database(admin, database)
    dsn = database_uri(admin, database)
    await migrate_service(dsn, "reelpolicy_portal.migrations", "portal")
    settings: Settings = settings_for(
        Settings,
        database_url=dsn,
        bootstrap_servers="127.0.0.1:1",  # the portal uses no broker
        portal_session_secret=SESSION_SECRET,
        portal_key_encryption_keys=Fernet.generate_key().decode(),
        portal_session_prune_seconds=0.2,
    )
    portal = bootstrap(settings)
    conn = await asyncpg.connect(dsn)
    try:
        async with portal.lifespan():
            sessions = portal.sessions()
            # expiring while the process runs (after its start, when the first pass ran)
            expiring = await sessions.create(
                role="company",
                enterprise_id="e-expiring",
                api_key="rp_expiring",
                link_key_id=None,
                lifetime=timedelta(seconds=1),
            )
            live = await sessions.create(
                role="company",
                enterprise_id="e-live",
                api_key="rp_live",
                link_key_id=None,
                lifetime=timedelta(hours=1),
            )
            count = "SELECT count(*) FROM sessions WHERE enterprise_id = $1"
            assert await conn.fetchval(count, "e-expiring") == 1

            async def expired_gone() -> bool:
                left: int = await conn.fetchval(count, "e-expiring")
                return left == 0

            await eventually(expired_gone, timeout=30, interval=0.1)
            assert await conn.fetchval(count, "e-live") == 1
            assert await sessions.get(live) is not None
            assert await sessions.get(expiring) is None
            assert await portal.check_health() == {}
            [task] = [t for t in portal.tasks if t.name == SESSION_PRUNE_TASK]
            assert task.state == "running"
    finally:
        await conn.close()
