"""A revoked policy stays revoked: re-syncing the catalog (as every ``make up`` does)
or posting the same document again stores nothing and emits nothing; only a changed
document makes a new version, and that new version is published again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import yaml

from reelpolicy_common.db.pool import create_pool
from reelpolicy_ingest import handlers
from reelpolicy_ingest.adapters.postgres import IngestUnitOfWork
from reelpolicy_ingest.cli import load_folder, store_all
from reelpolicy_ingest.config import Settings
from reelpolicy_ingest.main import create_app
from service_harness import ROOT, add_api_key, migrate_service, settings_for

pytestmark = pytest.mark.servers

CATALOG = ROOT / "catalog"


async def fetch_one(dsn: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def test_resyncing_the_catalog_leaves_a_revoked_policy_revoked(
    fresh_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrate_service(fresh_database, "reelpolicy_ingest.migrations", "ingest")
    settings = settings_for(Settings, database_url=fresh_database, bootstrap_servers="unused:1")
    policies = load_folder(CATALOG)
    assert policies is not None
    assert await store_all(settings, policies) == 0
    revoked_id = policies[0].id

    pool = await create_pool(fresh_database, max_size=2)
    try:
        await handlers.revoke_policy(
            uow=lambda: IngestUnitOfWork(pool), policy_id=revoked_id, reason="withdrawn"
        )
    finally:
        await pool.close()
    outbox = await fetch_one(fresh_database, "SELECT count(*) FROM outbox")
    capsys.readouterr()

    assert await store_all(settings, policies) == 0  # the next `make up`

    assert f"{revoked_id} v1: unchanged (revoked)" in capsys.readouterr().out
    assert await fetch_one(fresh_database, "SELECT count(*) FROM outbox") == outbox
    assert await fetch_one(fresh_database, "SELECT max(version) FROM policy_versions") == 1
    revoked = await fetch_one(
        fresh_database,
        "SELECT count(*) FROM policies WHERE policy_id = $1 AND revoked_at IS NOT NULL",
        revoked_id,
    )
    assert revoked == 1


@pytest.fixture
async def client(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[httpx.AsyncClient]:
    await migrate_service(fresh_database, "reelpolicy_ingest.migrations", "ingest")
    key = await add_api_key(fresh_database)
    app = create_app(
        settings_for(Settings, database_url=fresh_database, bootstrap_servers=bootstrap_servers)
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://ingest",
            headers={"Authorization": f"Bearer {key}"},
        ) as http,
    ):
        yield http


async def test_posting_a_revoked_document_again_changes_nothing_until_it_changes(
    client: httpx.AsyncClient, fresh_database: str
) -> None:
    raw = yaml.safe_load((CATALOG / "yp-new-enterprise-office.yaml").read_text(encoding="utf-8"))
    doc = json.loads(json.dumps(raw, default=str))  # YAML dates -> ISO text
    doc.pop("version", None)
    assert (await client.post("/v1/policies", json=doc)).status_code == 201
    assert (await client.delete(f"/v1/policies/{doc['id']}")).status_code == 200

    again = await client.post("/v1/policies", json=doc)
    assert again.status_code == 200, again.text
    assert (again.json()["version"], again.json()["created"], again.json()["revoked"]) == (
        1,
        False,
        True,
    )
    with_next_version = await client.post("/v1/policies", json={**doc, "version": 2})
    assert (with_next_version.status_code, with_next_version.json()["revoked"]) == (200, True)
    assert (await client.get("/v1/policies")).json()["items"][0]["revoked"] is True
    assert await fetch_one(fresh_database, "SELECT count(*) FROM outbox") == 2  # published, revoked

    # a changed document is a new publication: it makes version 2 and is live again
    edited = {**doc, "title": {"zh": "新版", "en": "Reissued"}}
    reissued = await client.post("/v1/policies", json=edited)
    assert reissued.status_code == 201, reissued.text
    assert (reissued.json()["version"], reissued.json()["revoked"]) == (2, False)
    assert (await client.get("/v1/policies")).json()["items"][0]["revoked"] is False
    assert await fetch_one(fresh_database, "SELECT count(*) FROM outbox") == 3
