"""A company has at most ``MAX_SUBSCRIPTIONS_PER_COMPANY`` subscriptions; operators
are not held to it."""

from __future__ import annotations

import pytest
from notify_app import prepare, running_notify

pytestmark = pytest.mark.servers


async def test_a_company_has_at_most_its_quota_of_subscriptions(
    fresh_database: str, bootstrap_servers: str
) -> None:
    await prepare(fresh_database, bootstrap_servers)
    async with running_notify(
        fresh_database, bootstrap_servers, max_subscriptions_per_company=2
    ) as notify:
        enterprise_id = "00000000-0000-4000-8000-000000000001"
        body = {"channel": "email", "email": "a@example.com", "events": ["eligibility.changed"]}
        async with notify.client(await notify.key(enterprise_id=enterprise_id)) as company:
            for _ in range(2):
                created = await company.post("/v1/subscriptions", json=body)
                assert created.status_code == 201, created.text
            over = await company.post("/v1/subscriptions", json=body)
            assert over.status_code == 409, over.text
            assert "MAX_SUBSCRIPTIONS_PER_COMPANY" in over.text
        async with notify.client(await notify.key()) as operator:
            for_them = await operator.post(
                "/v1/subscriptions", json={**body, "enterprise_id": enterprise_id}
            )
            assert for_them.status_code == 201, for_them.text
