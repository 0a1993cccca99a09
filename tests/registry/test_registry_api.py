"""The registry API at its boundary, on the real embedded PostgreSQL and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from registry_helpers import RegistryClient, new_enterprise, running_registry

from reelpolicy_common.auth import hash_api_key
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import ApiKeyChanged, EventType
from service_harness import SECRET_KEY, topic_events

pytestmark = pytest.mark.servers


@pytest.fixture
async def registry(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RegistryClient]:
    async with running_registry(fresh_database, bootstrap_servers) as running:
        yield running


async def test_create_get_patch_delete_with_versions(registry: RegistryClient) -> None:
    client = registry.client
    created = await registry.enterprise()
    eid = created["id"]
    assert created["version"] == 1
    assert created["region_code"] == "310110"
    got = await client.get(f"/v1/enterprises/{eid}")
    assert got.status_code == 200
    assert got.headers["ETag"] == '"1"'

    moved = await client.patch(
        f"/v1/enterprises/{eid}",
        json={"region_code": "310117", "employees": None},
        headers={"If-Match": '"1"'},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 2
    assert moved.json()["region_history"] == [{"region_code": "310110", "since": "2021-03-04"}]

    stale = await client.patch(
        f"/v1/enterprises/{eid}", json={"sme": True}, headers={"If-Match": "1"}
    )
    assert stale.status_code == 412
    assert stale.json()["errors"][0]["field"] == "If-Match"
    stale_delete = await client.delete(f"/v1/enterprises/{eid}", headers={"If-Match": 'W/"1"'})
    assert stale_delete.status_code == 412

    production = await registry.production(eid, external_id="x-1", platforms=["douyin"])
    deleted = await client.delete(f"/v1/enterprises/{eid}", headers={"If-Match": "2"})
    assert deleted.status_code == 200
    assert deleted.json()["version"] == 3
    assert (await client.get(f"/v1/enterprises/{eid}")).status_code == 404
    assert (await client.get(f"/v1/productions/{production['id']}")).status_code == 404

    events = await topic_events(
        registry.bootstrap, topics.REGISTRY, where=lambda e: e.key == eid, expected=5
    )
    assert [(e.type, e.payload["version"]) for e in events] == [
        (EventType.enterprise_upserted, 1),
        (EventType.enterprise_upserted, 2),
        (EventType.production_upserted, 1),
        (EventType.production_deleted, 2),
        (EventType.enterprise_deleted, 3),
    ]
    assert events[-1].payload["deleted"] is True
    assert events[-1].payload["attributes"]["region_code"] == "310117"


async def test_duplicate_credit_code_conflicts(registry: RegistryClient) -> None:
    body = new_enterprise()
    assert (await registry.client.post("/v1/enterprises", json=body)).status_code == 201
    again = await registry.client.post("/v1/enterprises", json=body)
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "credit_code"


async def test_pagination_and_filters(registry: RegistryClient) -> None:
    client = registry.client
    for region in ["310110", "310117", "610113", "410105", "610102"]:
        await registry.enterprise(
            region=region, kind="studio_base" if region[0] == "6" else "production_company"
        )
    seen: list[str] = []
    cursor = None
    while True:
        page = (
            await client.get(
                "/v1/enterprises", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
            )
        ).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen)

    async def ids(path: str, **params: str) -> set[str]:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        return {e["region_code"] for e in response.json()["items"]}

    assert await ids("/v1/enterprises", region_prefix="6101") == {"610113", "610102"}
    assert await ids("/v1/enterprises", kind="studio_base") == {"610113", "610102"}
    assert len(await ids("/v1/enterprises", tag="micro_drama")) == 5
    assert len(await ids("/v1/enterprises", q="star media")) == 5
    assert await ids("/v1/enterprises", q="nobody") == set()

    owner = (await client.get("/v1/enterprises", params={"region_prefix": "4101"})).json()["items"][
        0
    ]
    await registry.production(
        owner["id"],
        region_code="410105",
        platforms=["douyin"],
        themes=["yellow_river_culture"],
        content_status="approved",
    )
    await registry.production(owner["id"], region_code="610113", platforms=["kuaishou"])
    assert await ids("/v1/productions", platform="douyin") == {"410105"}
    assert await ids("/v1/productions", theme="yellow_river_culture") == {"410105"}
    assert await ids("/v1/productions", content_status="approved") == {"410105"}
    assert await ids("/v1/productions", region_prefix="61") == {"610113"}
    assert len(await ids("/v1/productions", enterprise_id=owner["id"])) == 2
    bad = await client.get("/v1/productions", params={"platform": "myspace"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "platform"
    assert (await client.get("/v1/enterprises", params={"cursor": "zzz"})).status_code == 400


async def test_company_keys_see_only_their_own(registry: RegistryClient) -> None:
    mine = await registry.enterprise()
    other = await registry.enterprise()
    theirs = await registry.production(other["id"])
    async with await registry.company_client(mine["id"]) as company:
        assert (await company.get(f"/v1/enterprises/{mine['id']}")).status_code == 200
        assert (await company.get(f"/v1/enterprises/{other['id']}")).status_code == 404
        assert (
            await company.patch(f"/v1/enterprises/{other['id']}", json={"sme": True})
        ).status_code == 404
        assert (await company.get(f"/v1/productions/{theirs['id']}")).status_code == 404
        assert (
            await company.patch(f"/v1/productions/{theirs['id']}", json={"title": "x"})
        ).status_code == 404
        assert (await company.delete(f"/v1/productions/{theirs['id']}")).status_code == 404
        foreign = await company.post(
            "/v1/productions", json={"enterprise_id": other["id"], "title": "x"}
        )
        assert foreign.status_code == 404
        own = await company.post(
            "/v1/productions", json={"enterprise_id": mine["id"], "title": "Mine"}
        )
        assert own.status_code == 201
        patched = await company.patch(f"/v1/enterprises/{mine['id']}", json={"employees": 12})
        assert patched.status_code == 200
        assert patched.json()["employees"] == 12
        listed = (await company.get("/v1/enterprises")).json()["items"]
        assert [e["id"] for e in listed] == [mine["id"]]
        productions = (
            await company.get("/v1/productions", params={"enterprise_id": other["id"]})
        ).json()
        assert productions["items"] == []
        assert [p["title"] for p in (await company.get("/v1/productions")).json()["items"]] == [
            "Mine"
        ]
        assert (await company.post("/v1/enterprises", json=new_enterprise())).status_code == 403
        assert (await company.delete(f"/v1/enterprises/{mine['id']}")).status_code == 403
        assert (await company.get("/v1/api-keys")).status_code == 403
    async with registry.as_key("rp_nope_nope") as stranger:
        assert (await stranger.get("/v1/enterprises")).status_code == 401


async def test_api_keys_are_issued_stored_hashed_revoked_and_announced(
    registry: RegistryClient,
) -> None:
    company = await registry.enterprise()
    issued = await registry.client.post(
        "/v1/api-keys", json={"role": "company", "enterprise_id": company["id"], "label": "acme"}
    )
    assert issued.status_code == 201, issued.text
    key, key_id = issued.json()["key"], issued.json()["key_id"]
    async with registry.as_key(key) as as_company:
        assert (await as_company.get(f"/v1/enterprises/{company['id']}")).status_code == 200
    listed = (await registry.client.get("/v1/api-keys")).json()
    assert key_id in {k["key_id"] for k in listed}
    assert "key" not in listed[0]
    assert (await registry.client.delete(f"/v1/api-keys/{key_id}")).json()["revoked"] is True
    async with registry.as_key(key) as as_company:
        assert (await as_company.get(f"/v1/enterprises/{company['id']}")).status_code == 401
    events = await topic_events(
        registry.bootstrap,
        topics.REGISTRY,
        where=lambda e: e.type == EventType.api_key_changed and e.payload["key_id"] == key_id,
        expected=2,
    )
    changes = [ApiKeyChanged.model_validate(e.payload) for e in events]
    assert [c.revoked for c in changes] == [False, True]
    assert changes[0].key_hash == hash_api_key(key, secret_key=SECRET_KEY)
    assert events[0].key == company["id"]
    bad = await registry.client.post("/v1/api-keys", json={"role": "company"})
    assert bad.status_code == 422


async def test_openapi_and_asyncapi_documents(registry: RegistryClient) -> None:
    openapi = (await registry.client.get("/openapi.json")).json()
    assert {"/v1/enterprises", "/v1/productions/{production_id}", "/v1/import"} <= set(
        openapi["paths"]
    )
    assert openapi["paths"]["/v1/enterprises"]["post"]["description"]
    asyncapi = await registry.client.get("/asyncapi.json")
    assert asyncapi.status_code == 200
    assert topics.REGISTRY in asyncapi.text


async def test_openapi_states_the_merge_patch_and_key_bodies(registry: RegistryClient) -> None:
    openapi = (await registry.client.get("/openapi.json")).json()
    schemas = openapi["components"]["schemas"]

    def body(path: str, method: str) -> dict[str, object]:
        ref: str = openapi["paths"][path][method]["requestBody"]["content"]["application/json"][
            "schema"
        ]["$ref"]
        return schemas[ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]

    enterprise_patch = body("/v1/enterprises/{enterprise_id}", "patch")
    assert enterprise_patch["additionalProperties"] is False
    assert not enterprise_patch.get("required")
    members = enterprise_patch["properties"]
    assert isinstance(members, dict)
    # a null removes a member: allowed where the record stays valid without it
    assert "anyOf" not in members["name"]
    assert {"type": "null"} in members["sme"]["anyOf"]
    assert {"type": "null"} in members["tags"]["anyOf"]
    production_patch = body("/v1/productions/{production_id}", "patch")
    assert production_patch["additionalProperties"] is False
    assert "enterprise_id" not in production_patch["properties"]  # type: ignore[operator]
    assert schemas["OverseasPatch"]["additionalProperties"] is False
    issue = openapi["paths"]["/v1/api-keys"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert issue["discriminator"]["propertyName"] == "role"
    assert "required" in schemas["CompanyKeyRequest"]
    assert "enterprise_id" in schemas["CompanyKeyRequest"]["required"]
