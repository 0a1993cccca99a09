"""One-time sign-in links to the portal: mint, redeem once, sign out by revoking the key."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from registry_helpers import RegistryClient, running_registry

from reelpolicy_common.db.pool import create_pool
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import ApiKeyChanged, EventType
from reelpolicy_registry.adapters.postgres import RegistryUnitOfWork
from reelpolicy_registry.domain.portal_links import LinkNotRedeemableError
from reelpolicy_registry.handlers.portal_links import mint_portal_link, redeem_portal_link
from service_harness import SECRET_KEY, topic_events

pytestmark = pytest.mark.servers

PORTAL = "https://portal.example.cn"


@pytest.fixture
async def registry(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RegistryClient]:
    async with running_registry(
        fresh_database, bootstrap_servers, portal_base_url=PORTAL + "/"
    ) as running:
        yield running


def anonymous(registry: RegistryClient) -> httpx.AsyncClient:
    """A caller with no API key: the person who opened a sign-in link."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.app), base_url="http://r")


async def mint(registry: RegistryClient, enterprise_id: str) -> dict[str, str]:
    response = await registry.client.post("/v1/portal-links", json={"enterprise_id": enterprise_id})
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def test_a_link_signs_in_once_with_a_new_session_key(registry: RegistryClient) -> None:
    company = await registry.enterprise()
    response = await registry.client.post("/v1/portal-links", json={"enterprise_id": company["id"]})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    link = response.json()
    url = urlsplit(link["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{PORTAL}/sign-in/link"
    assert parse_qs(url.query) == {"token": [link["token"]]}
    stored = await registry.fetch("SELECT * FROM portal_links")
    assert len(stored) == 1
    assert stored[0]["token_hash"] == hashlib.sha256(link["token"].encode()).hexdigest()
    assert link["token"] not in repr([dict(r) for r in stored])  # only its hash is kept
    assert stored[0]["expires_at"] - stored[0]["created_at"] == timedelta(minutes=15)
    assert datetime.fromisoformat(link["expires_at"]) == stored[0]["expires_at"]

    async with anonymous(registry) as person:
        redeemed = await person.post("/v1/portal-links/redeem", json={"token": link["token"]})
        assert redeemed.status_code == 200, redeemed.text
        assert redeemed.headers["cache-control"] == "no-store"
        session = redeemed.json()
        assert session["enterprise_id"] == company["id"]
        again = await person.post("/v1/portal-links/redeem", json={"token": link["token"]})
        assert again.status_code == 404

    async with registry.as_key(session["api_key"]) as as_company:
        assert (await as_company.get(f"/v1/enterprises/{company['id']}")).status_code == 200
    keys = {k["key_id"]: k for k in (await registry.client.get("/v1/api-keys")).json()}
    assert keys[session["key_id"]]["role"] == "company"
    assert keys[session["key_id"]]["enterprise_id"] == company["id"]
    assert keys[session["key_id"]]["label"] == "portal session"
    assert await registry.fetchval("SELECT key_id FROM portal_links") == session["key_id"]
    events = await topic_events(
        registry.bootstrap,
        topics.REGISTRY,
        where=lambda e: (
            e.type == EventType.api_key_changed and e.payload["key_id"] == session["key_id"]
        ),
        expected=1,
    )
    issued = ApiKeyChanged.model_validate(events[0].payload)
    assert (issued.label, issued.enterprise_id, issued.revoked) == (
        "portal session",
        company["id"],
        False,
    )


async def test_unknown_used_and_expired_links_are_refused_alike(registry: RegistryClient) -> None:
    company = await registry.enterprise()
    used, expired = await mint(registry, company["id"]), await mint(registry, company["id"])
    await registry.fetchval(
        "UPDATE portal_links SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        hashlib.sha256(expired["token"].encode()).hexdigest(),
    )
    async with anonymous(registry) as person:
        first = await person.post("/v1/portal-links/redeem", json={"token": used["token"]})
        assert first.status_code == 200
        answers = [
            await person.post("/v1/portal-links/redeem", json={"token": token})
            for token in (used["token"], expired["token"], "x" * len(used["token"]))
        ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert answers[0].headers["content-type"] == "application/problem+json"
    assert answers[0].json()["errors"][0]["field"] == "token"
    assert len({(a.content, tuple(sorted(a.headers.items()))) for a in answers}) == 1
    assert (
        await registry.fetchval("SELECT count(*) FROM api_keys WHERE label = 'portal session'") == 1
    )


async def test_concurrent_redeems_of_one_link_give_one_key(registry: RegistryClient) -> None:
    company = await registry.enterprise()
    links = [await mint(registry, company["id"]) for _ in range(10)]
    async with anonymous(registry) as person:
        answers = await asyncio.gather(
            *(
                person.post("/v1/portal-links/redeem", json={"token": link["token"]})
                for link in links
                for _ in range(3)
            )
        )
    statuses = [a.status_code for a in answers]
    for index in range(len(links)):
        assert sorted(statuses[3 * index : 3 * index + 3]) == [200, 404, 404], statuses
    assert await registry.fetchval(
        "SELECT count(*) FROM api_keys WHERE label = 'portal session'"
    ) == len(links)
    assert await registry.fetchval(
        "SELECT count(*) FROM outbox WHERE event_type = 'api_key.changed'"
    ) == len(links)  # the test's own operator key was written straight to the table


async def test_a_link_expires_after_its_validity(
    fresh_database: str, registry: RegistryClient
) -> None:
    company = await registry.enterprise()
    minted_at = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    pool = await create_pool(fresh_database, max_size=2)
    try:

        def uow() -> RegistryUnitOfWork:
            return RegistryUnitOfWork(pool)

        async def link_redeemed_at(moment: datetime) -> bool:
            link = await mint_portal_link(
                uow=uow,
                enterprise_id=company["id"],
                portal_base_url=PORTAL,
                valid_for=timedelta(minutes=15),
                clock=lambda: minted_at,
            )
            assert link.expires_at == minted_at + timedelta(minutes=15)
            try:
                await redeem_portal_link(
                    uow=uow, secret_key=SECRET_KEY, token=link.token, clock=lambda: moment
                )
            except LinkNotRedeemableError:
                return False
            return True

        assert await link_redeemed_at(minted_at + timedelta(minutes=14, seconds=59))
        assert not await link_redeemed_at(minted_at + timedelta(minutes=15))
        assert not await link_redeemed_at(minted_at + timedelta(days=1))
    finally:
        await pool.close()


async def test_minting_is_for_operators_and_live_enterprises(registry: RegistryClient) -> None:
    company = await registry.enterprise()
    async with await registry.company_client(company["id"]) as as_company:
        refused = await as_company.post("/v1/portal-links", json={"enterprise_id": company["id"]})
        assert refused.status_code == 403
    async with anonymous(registry) as person:
        assert (
            await person.post("/v1/portal-links", json={"enterprise_id": company["id"]})
        ).status_code == 401
    unknown = await registry.client.post(
        "/v1/portal-links", json={"enterprise_id": "0193a4c2-7d1e-7c3a-9f10-5b2e8d4c6a01"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["field"] == "enterprise_id"
    for body in ({}, {"enterprise_id": company["id"], "extra": 1}, {"enterprise_id": 7}):
        bad = await registry.client.post("/v1/portal-links", json=body)
        assert bad.status_code == 422, body
        assert bad.headers["content-type"] == "application/problem+json"
    assert await registry.fetchval("SELECT count(*) FROM portal_links") == 0


async def test_a_link_of_a_deleted_enterprise_is_refused(registry: RegistryClient) -> None:
    company = await registry.enterprise()
    link = await mint(registry, company["id"])
    assert (await registry.client.delete(f"/v1/enterprises/{company['id']}")).status_code == 200
    async with anonymous(registry) as person:
        refused = await person.post("/v1/portal-links/redeem", json={"token": link["token"]})
    assert refused.status_code == 404
    assert (
        await registry.fetchval("SELECT count(*) FROM api_keys WHERE label = 'portal session'") == 0
    )


async def test_redeem_refuses_malformed_bodies_with_problems(registry: RegistryClient) -> None:
    async with anonymous(registry) as person:
        for body in ({}, {"token": ""}, {"token": "t" * 129}, {"token": 5}, {"token": "t", "x": 1}):
            bad = await person.post("/v1/portal-links/redeem", json=body)
            assert bad.status_code == 422, body
            assert bad.json()["errors"][0]["field"].startswith(("token", "x", "body"))
        broken = await person.post(
            "/v1/portal-links/redeem",
            content=b"\xff",
            headers={"content-type": "application/json"},
        )
        assert broken.status_code in (400, 422)
        assert broken.headers["content-type"] == "application/problem+json"


async def test_a_company_revokes_its_own_keys_only(registry: RegistryClient) -> None:
    mine, other = await registry.enterprise(), await registry.enterprise()
    async with anonymous(registry) as person:
        session = (
            await person.post(
                "/v1/portal-links/redeem",
                json={"token": (await mint(registry, mine["id"]))["token"]},
            )
        ).json()
    foreign = (
        await registry.client.post(
            "/v1/api-keys", json={"role": "company", "enterprise_id": other["id"]}
        )
    ).json()
    operator = (await registry.client.post("/v1/api-keys", json={"role": "operator"})).json()
    async with registry.as_key(session["api_key"]) as as_company:
        for key_id in (foreign["key_id"], operator["key_id"], "no-such-key"):
            refused = await as_company.delete(f"/v1/api-keys/{key_id}")
            assert refused.status_code == 404, key_id
            assert refused.headers["content-type"] == "application/problem+json"
        assert (await as_company.get("/v1/api-keys")).status_code == 403
        signed_out = await as_company.delete(f"/v1/api-keys/{session['key_id']}")
        assert signed_out.status_code == 200, signed_out.text
        assert signed_out.json()["revoked"] is True
        assert (await as_company.get(f"/v1/enterprises/{mine['id']}")).status_code == 401
    revoked = await registry.fetch("SELECT key_id FROM api_keys WHERE revoked_at IS NOT NULL")
    assert [r["key_id"] for r in revoked] == [session["key_id"]]


async def test_openapi_documents_the_sign_in_links(registry: RegistryClient) -> None:
    openapi = (await registry.client.get("/openapi.json")).json()
    mint_operation = openapi["paths"]["/v1/portal-links"]["post"]
    assert {"201", "401", "403", "404", "422"} <= set(mint_operation["responses"])
    assert "example" in mint_operation["requestBody"]["content"]["application/json"]
    problem = mint_operation["responses"]["404"]["content"]["application/problem+json"]
    assert problem["example"]["errors"][0]["field"] == "enterprise_id"
    redeem = openapi["paths"]["/v1/portal-links/redeem"]["post"]
    assert not redeem.get("security")  # no key: the person has none yet
    assert {"200", "404", "422"} <= set(redeem["responses"])
    assert "401" not in redeem["responses"]
    assert redeem["responses"]["404"]["content"]["application/problem+json"]["example"]
    assert "example" in redeem["requestBody"]["content"]["application/json"]
    revoke = openapi["paths"]["/v1/api-keys/{key_id}"]["delete"]
    assert "404" in revoke["responses"]
