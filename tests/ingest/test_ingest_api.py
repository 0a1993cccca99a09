"""The ingest API at its boundary, on the real embedded PostgreSQL and broker."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import EventType
from reelpolicy_ingest.config import Settings
from reelpolicy_ingest.main import create_app
from service_harness import ROOT, add_api_key, migrate_service, settings_for, topic_events

pytestmark = pytest.mark.servers

CATALOG = ROOT / "catalog"


def catalog_doc(
    name: str = "yp-new-enterprise-office", *, new_id: str | None = None
) -> dict[str, Any]:
    raw = yaml.safe_load((CATALOG / f"{name}.yaml").read_text(encoding="utf-8"))
    doc: dict[str, Any] = json.loads(json.dumps(raw, default=str))  # YAML dates -> ISO text
    doc.pop("version", None)
    doc["id"] = new_id or f"t-{uuid.uuid4().hex[:10]}"
    return doc


class Ingest:
    def __init__(self, client: httpx.AsyncClient, dsn: str, bootstrap: str) -> None:
        self.client = client
        self.dsn = dsn
        self.bootstrap = bootstrap

    async def count(self, sql: str) -> int:
        conn = await asyncpg.connect(self.dsn)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()


@pytest.fixture
async def ingest(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[Ingest]:
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
        ) as client,
    ):
        yield Ingest(client, fresh_database, bootstrap_servers)


async def test_versions_are_assigned_and_identical_resubmission_is_a_no_op(ingest: Ingest) -> None:
    doc = catalog_doc()
    first = await ingest.client.post("/v1/policies", json=doc)
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["created"]) == (1, True)

    again = await ingest.client.post("/v1/policies", json=doc)
    assert again.status_code == 200
    assert (again.json()["version"], again.json()["created"]) == (1, False)

    edited = copy.deepcopy(doc)
    edited["benefits"][0]["max_amount_cny"] = 3_500_000
    second = await ingest.client.post("/v1/policies", json=edited)
    assert (second.status_code, second.json()["version"]) == (201, 2)

    assert await ingest.count("SELECT count(*) FROM policy_versions") == 2
    assert await ingest.count("SELECT count(*) FROM outbox") == 2


async def test_a_supplied_version_must_be_the_next_one(ingest: Ingest) -> None:
    doc = catalog_doc()
    assert (await ingest.client.post("/v1/policies", json={**doc, "version": 1})).status_code == 201
    stale = await ingest.client.post(
        "/v1/policies", json={**doc, "version": 5, "title": {"zh": "改", "en": "Edited"}}
    )
    assert stale.status_code == 409
    assert stale.json()["errors"][0]["field"] == "version"
    assert stale.json()["errors"][0]["context"] == {"next_version": 2}


async def test_yaml_documents_are_accepted(ingest: Ingest) -> None:
    doc = catalog_doc("sj-matching-funds")
    response = await ingest.client.post(
        "/v1/policies",
        content=yaml.safe_dump(doc, allow_unicode=True).encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    latest = await ingest.client.get(f"/v1/policies/{doc['id']}")
    assert latest.json()["id"] == doc["id"]
    assert latest.json()["version"] == 1


async def test_an_invalid_document_is_rejected_whole_with_json_paths(ingest: Ingest) -> None:
    doc = catalog_doc()
    doc["criteria"] = {"all": [{"field": "production.platfroms", "op": "exists"}]}
    doc["title"] = {"zh": "只有中文"}
    response = await ingest.client.post("/v1/policies", json=doc)
    assert response.status_code == 400  # a JSON object (the request schema), not a policy
    fields = {e["field"] for e in response.json()["errors"]}
    assert "$.title.en" in fields
    assert any(f.startswith("$.criteria") for f in fields)
    for bad in (b"{not json", b"\x00\x01"):
        broken = await ingest.client.post(
            "/v1/policies", content=bad, headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 422
        assert broken.json()["errors"][0]["field"] == "$"
    wrong_type = await ingest.client.post(
        "/v1/policies", content=b"id: x", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 422
    assert await ingest.count("SELECT count(*) FROM policy_versions") == 0
    assert await ingest.count("SELECT count(*) FROM outbox") == 0


async def test_list_pages_and_old_versions(ingest: Ingest) -> None:
    ids = sorted(f"t-page-{i}-{uuid.uuid4().hex[:6]}" for i in range(5))
    for policy_id in ids:
        assert (
            await ingest.client.post("/v1/policies", json=catalog_doc(new_id=policy_id))
        ).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await ingest.client.get("/v1/policies", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        assert set(page["items"][0]) >= {"id", "version", "title", "sources", "effective"}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    edited = catalog_doc(new_id=ids[0])
    edited["title"] = {"zh": "新", "en": "New title"}
    await ingest.client.post("/v1/policies", json=edited)
    old = await ingest.client.get(f"/v1/policies/{ids[0]}/versions/1")
    assert old.json()["title"]["en"] != "New title"
    assert (await ingest.client.get(f"/v1/policies/{ids[0]}")).json()["title"]["en"] == "New title"
    assert (await ingest.client.get(f"/v1/policies/{ids[0]}/versions/9")).status_code == 404
    assert (await ingest.client.get("/v1/policies/no-such-policy")).status_code == 404


async def test_events_are_published_and_revocation_is_an_event(ingest: Ingest) -> None:
    doc = catalog_doc()
    await ingest.client.post("/v1/policies", json=doc)
    revoked = await ingest.client.delete(f"/v1/policies/{doc['id']}", params={"reason": "ended"})
    assert revoked.json() == {"id": doc["id"], "version": 1, "revoked": True}
    assert (await ingest.client.delete(f"/v1/policies/{doc['id']}")).status_code == 200
    # found by the fuzzer: a revoked policy was still served (200) by its id
    for path in (f"/v1/policies/{doc['id']}", f"/v1/policies/{doc['id']}/versions/1"):
        gone = await ingest.client.get(path)
        assert gone.status_code == 404, (path, gone.text)
        assert gone.json()["errors"][0] == {
            "field": "policy_id",
            "message": f"policy {doc['id']} was revoked",
            "context": {"version": 1},
        }
    events = await topic_events(
        ingest.bootstrap, topics.POLICY, where=lambda e: e.key == doc["id"], expected=2
    )
    assert [e.type for e in events] == [EventType.policy_published, EventType.policy_revoked]
    assert events[0].payload["document"]["id"] == doc["id"]
    assert events[0].payload["version"] == 1
    assert events[1].payload["reason"] == "ended"


async def test_schema_is_served_and_keys_are_required(ingest: Ingest) -> None:
    schema = await ingest.client.get("/v1/policies/schema")
    assert schema.status_code == 200
    assert "criteria" in schema.json()["properties"]
    anonymous = await ingest.client.get("/v1/policies", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    company_key = await add_api_key(ingest.dsn, role="company", enterprise_id="e1")
    denied = await ingest.client.post(
        "/v1/policies", json=catalog_doc(), headers={"Authorization": f"Bearer {company_key}"}
    )
    assert denied.status_code == 403
    health = await ingest.client.get("/healthz", headers={"Authorization": ""})
    assert health.json() == {"status": "ok"}
    asyncapi = (await ingest.client.get("/asyncapi.json")).json()
    assert topics.POLICY in str(asyncapi["channels"])


async def test_sync_command_stores_only_real_edits(fresh_database: str, tmp_path: Path) -> None:
    from reelpolicy_ingest.cli import load_folder, store_all

    await migrate_service(fresh_database, "reelpolicy_ingest.migrations", "ingest")
    settings = settings_for(Settings, database_url=fresh_database, bootstrap_servers="unused:1")
    policies = load_folder(CATALOG)
    assert policies is not None
    assert len(policies) >= 20
    assert await store_all(settings, policies) == 0
    assert await store_all(settings, policies) == 0
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM policy_versions") == len(policies)
        assert await conn.fetchval("SELECT max(version) FROM policy_versions") == 1
    finally:
        await conn.close()
    (tmp_path / "bad.yaml").write_text("id: broken\n", encoding="utf-8")
    assert load_folder(tmp_path) is None


def yaml_with_sources(doc: dict[str, Any], sources: str) -> bytes:
    """``doc`` as YAML, its ``sources`` replaced by the given YAML text."""
    rest = {k: v for k, v in doc.items() if k != "sources"}
    return (yaml.safe_dump(rest, allow_unicode=True) + f"sources: {sources}\n").encode()


async def test_a_document_that_expands_past_the_limits_answers_413_and_stores_nothing(
    ingest: Ingest,
) -> None:
    doc = catalog_doc()
    # 5 KB of YAML: one 4 KB source named 200 times is 800 KB once expanded, and its
    # policy.published event would be more than a broker takes in one record
    long_url = "https://example.org/" + "a" * 4000
    repeated = yaml_with_sources(
        doc, f'[&s {{fact: F-YP-01, url: "{long_url}"}}' + ", *s" * 199 + "]"
    )
    assert len(repeated) < 16_000
    # a few hundred bytes that expand to 10^10 nodes: refused before they are loaded
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 11)
    ]
    bomb = ("\n".join(levels) + "\n").encode() + yaml_with_sources(doc, "[{fact: F-YP-01}]")
    for body in (repeated, bomb):
        response = await ingest.client.post(
            "/v1/policies", content=body, headers={"Content-Type": "application/yaml"}
        )
        assert response.status_code == 413, response.text[:300]
        assert response.json()["errors"][0]["field"] == "document"
    assert await ingest.count("SELECT count(*) FROM policy_versions") == 0
    assert await ingest.count("SELECT count(*) FROM outbox") == 0
    ok = yaml_with_sources(doc, f'[&s {{fact: F-YP-01, url: "{long_url}"}}, *s]')
    accepted = await ingest.client.post(
        "/v1/policies", content=ok, headers={"Content-Type": "application/yaml"}
    )
    assert accepted.status_code == 201, accepted.text
