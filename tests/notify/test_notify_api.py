"""The notify API at its boundary: subscription CRUD, company isolation, URL safety."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from notify_app import RunningNotify, prepare, running_notify

from reelpolicy_notify.adapters.webhook_client import check_url
from reelpolicy_notify.domain.targets import UnsafeTargetError


@pytest.fixture
async def notify(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RunningNotify]:
    await prepare(fresh_database, bootstrap_servers)
    async with running_notify(fresh_database, bootstrap_servers) as running:
        yield running


@pytest.mark.servers
async def test_subscription_crud_and_company_isolation(notify: RunningNotify) -> None:
    ent_a, ent_b = f"ent-{uuid.uuid4().hex[:8]}", f"ent-{uuid.uuid4().hex[:8]}"
    operator = notify.client(await notify.key())
    company_a = notify.client(await notify.key(enterprise_id=ent_a))
    company_b = notify.client(await notify.key(enterprise_id=ent_b))
    body = {
        "channel": "webhook",
        "url": "http://127.0.0.1:9/hook",
        "events": ["eligibility.changed", "policy.deadline"],
        "filters": {"min_amount_cny": 1000},
        "digest": None,
    }

    created = await company_a.post("/v1/subscriptions", json=body)
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["enterprise_id"] == ent_a
    assert sub["secret"].startswith("whsec_")
    assert sub["deadline_days"] == 30
    path = f"/v1/subscriptions/{sub['id']}"

    mine = await company_a.get(path)
    assert mine.status_code == 200
    assert "secret" not in mine.json()
    assert (await company_b.get(path)).status_code == 404
    assert (await company_b.patch(path, json={"events": ["policy.changed"]})).status_code == 404
    assert (await company_b.delete(path)).status_code == 404
    assert (await company_b.post(f"{path}/rotate-secret")).status_code == 404
    assert (await company_b.post(f"{path}/test")).status_code == 404
    assert (await company_b.get("/v1/subscriptions")).json()["items"] == []
    foreign = await company_b.post("/v1/subscriptions", json={**body, "enterprise_id": ent_a})
    assert foreign.status_code == 404

    listed = (await operator.get("/v1/subscriptions")).json()["items"]
    assert [s["id"] for s in listed] == [sub["id"]]
    platform = await operator.post("/v1/subscriptions", json=body)
    assert platform.status_code == 201
    assert platform.json()["enterprise_id"] is None
    assert len((await company_a.get("/v1/subscriptions")).json()["items"]) == 1

    patched = await company_a.patch(
        path, json={"events": ["policy.changed"], "digest": {"window_seconds": 60}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["events"] == ["policy.changed"]
    assert patched.json()["digest"] == {"window_seconds": 60}

    rotated = await company_a.post(f"{path}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != sub["secret"]
    assert (await company_a.get(path)).json()["previous_secret_expires_at"] is not None

    assert (await company_a.delete(path)).status_code == 204
    assert (await company_a.get(path)).status_code == 404


@pytest.mark.servers
async def test_invalid_subscriptions_are_refused(notify: RunningNotify) -> None:
    client = notify.client(await notify.key())
    missing_url = await client.post(
        "/v1/subscriptions", json={"channel": "webhook", "events": ["eligibility.changed"]}
    )
    assert missing_url.status_code == 422
    bad_event = await client.post(
        "/v1/subscriptions",
        json={"channel": "email", "email": "a@b.c", "events": ["nope"]},
    )
    assert bad_event.status_code == 422
    assert (await client.get("/v1/subscriptions")).status_code == 200
    anonymous = notify.client("rp_nope_nope")
    assert (await anonymous.get("/v1/subscriptions")).status_code == 401


async def test_private_targets_are_refused_unless_allowed() -> None:
    for url in ("http://127.0.0.1/hook", "http://localhost:8080/x", "http://169.254.169.254/"):
        with pytest.raises(UnsafeTargetError):
            await check_url(url, allow_private=False, allowed_hosts=frozenset())
    await check_url("http://127.0.0.1/hook", allow_private=True, allowed_hosts=frozenset())
    await check_url(
        "http://localhost/x", allow_private=False, allowed_hosts=frozenset({"localhost"})
    )
    await check_url("http://93.184.215.14/", allow_private=False, allowed_hosts=frozenset())


@pytest.mark.servers
async def test_an_email_valid_by_the_published_pattern_is_accepted(notify: RunningNotify) -> None:
    # U+0085 is whitespace to pydantic's regex but not to the published (ECMA) `\s`;
    # the pattern names its excluded characters, so both read it alike
    client = notify.client(await notify.key())
    body = {"channel": "email", "events": ["eligibility.changed"]}
    accepted = await client.post("/v1/subscriptions", json=body | {"email": "a\u0085b@c.d"})
    assert accepted.status_code == 201, accepted.text
    spaced = await client.post("/v1/subscriptions", json=body | {"email": "a b@c.d"})
    assert spaced.status_code == 422
    document = (await client.get("/openapi.json")).json()
    assert "pattern" in json.dumps(document["components"]["schemas"]["SubscriptionPatch"])
