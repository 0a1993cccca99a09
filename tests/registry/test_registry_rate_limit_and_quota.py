"""Per API key a request rate (429 with Retry-After; operators exempt by default), and
per company a quota of productions. (The rate limit lives in ``libs/common`` and is
the same in every service; the registry shows it here.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from registry_helpers import RegistryClient, running_registry

from reelpolicy_common.http.rate_limit import RateLimiter

pytestmark = pytest.mark.servers


@pytest.fixture
async def registry(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RegistryClient]:
    async with running_registry(
        fresh_database,
        bootstrap_servers,
        rate_limit_per_minute=60,
        rate_limit_burst=3,
    ) as running:
        yield running


async def test_a_company_key_over_its_rate_gets_429_with_retry_after(
    registry: RegistryClient,
) -> None:
    enterprise = await registry.enterprise()
    company = await registry.company_client(enterprise["id"])
    async with company:
        answers = [await company.get(f"/v1/enterprises/{enterprise['id']}") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        over = await company.get(f"/v1/enterprises/{enterprise['id']}")
        assert over.status_code == 429, over.text
        assert int(over.headers["Retry-After"]) >= 1
        assert "rate limit" in over.text
        # the refusal is before the body: a company key over its rate cannot make the
        # service parse anything either
        refused = await company.post("/v1/productions", content=b"{not json")
        assert refused.status_code == 429


async def test_operator_keys_are_not_rate_limited_by_default(registry: RegistryClient) -> None:
    answers = [(await registry.client.get("/v1/enterprises")).status_code for _ in range(12)]
    assert answers == [200] * 12


async def test_operators_are_limited_when_configured(
    fresh_database: str, bootstrap_servers: str
) -> None:
    async with running_registry(
        fresh_database,
        bootstrap_servers,
        rate_limit_per_minute=60,
        rate_limit_burst=2,
        rate_limit_operators=True,
    ) as registry:
        answers = [(await registry.client.get("/v1/enterprises")).status_code for _ in range(3)]
    assert answers == [200, 200, 429]


def test_the_bucket_refills_at_the_rate_and_says_how_long_to_wait() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=30, burst=2, clock=lambda: now[0])  # one per 2 s
    assert [limiter.retry_after("k") for _ in range(3)] == [0, 0, 2]
    assert limiter.retry_after("other") == 0  # each key its own bucket
    now[0] = 1.0
    assert limiter.retry_after("k") == 1
    now[0] = 2.0
    assert limiter.retry_after("k") == 0
    now[0] = 1000.0
    assert [limiter.retry_after("k") for _ in range(3)] == [0, 0, 2]  # never above burst


def test_the_buckets_stay_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=5, max_keys=10, clock=lambda: now[0])
    for i in range(10):
        limiter.retry_after(f"k{i}")
    now[0] = 60.0  # all refilled: forgetting them changes nothing
    assert limiter.retry_after("new") == 0
    assert len(limiter._buckets) == 1


async def test_a_company_has_at_most_its_quota_of_productions(
    fresh_database: str, bootstrap_servers: str
) -> None:
    async with running_registry(
        fresh_database, bootstrap_servers, max_productions_per_company=2, rate_limit_per_minute=0
    ) as registry:
        await company_within_quota(registry)


async def company_within_quota(registry: RegistryClient) -> None:
    enterprise = await registry.enterprise()
    company = await registry.company_client(enterprise["id"])
    body = {"enterprise_id": enterprise["id"], "title": "Drama"}
    async with company:
        for _ in range(2):
            assert (await company.post("/v1/productions", json=body)).status_code == 201
        over = await company.post("/v1/productions", json=body)
        assert over.status_code == 409, over.text
        assert "MAX_PRODUCTIONS_PER_COMPANY" in over.text
        assert "enterprise_id" in over.text
        assert await registry.fetchval("SELECT count(*) FROM productions") == 2
        # an operator is not held to it
        await registry.production(enterprise["id"])
        assert (await company.post("/v1/productions", json=body)).status_code == 409
        # deleted productions free their places (3 live, 2 deleted: 1 live)
        for production_id in await registry.fetch("SELECT id::text FROM productions LIMIT 2"):
            deleted = await registry.client.delete(f"/v1/productions/{production_id[0]}")
            assert deleted.status_code in (200, 204), deleted.text
        assert (await company.post("/v1/productions", json=body)).status_code == 201
