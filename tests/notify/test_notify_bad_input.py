"""The notify API's bad-input corpus (see ``tests/bad_input.py``): one row per finding."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bad_input import NUL, Case, check, send, service_client
from reelpolicy_devstack.servers import EmbeddedBroker, EmbeddedPostgres

pytestmark = pytest.mark.servers


def subscription(**changes: Any) -> str:
    body = {"channel": "email", "email": "ops@example.com", "events": ["eligibility.changed"]}
    return json.dumps({**body, **changes})


CURSOR_BEFORE_YEAR_1 = base64.urlsafe_b64encode(
    f"0001-01-01T00:00:00+11:00|{uuid.UUID(int=1)}".encode()
).decode()

CASES = [
    # text PostgreSQL cannot store reached the insert (500)
    Case(
        "NUL in the e-mail address",
        "POST",
        "/v1/subscriptions",
        422,
        "email",
        body=subscription(email="a\x00b@example.com"),
    ),
    Case(
        "NUL in enterprise_id",
        "POST",
        "/v1/subscriptions",
        422,
        "enterprise_id",
        body=subscription(enterprise_id="a\x00b"),
    ),
    Case(
        "lone surrogate in a filter",
        "POST",
        "/v1/subscriptions",
        422,
        "policy_ids",
        body=subscription(filters={"policy_ids": ["\ud800"]}),
    ),
    Case(
        "NUL in a filter",
        "POST",
        "/v1/subscriptions",
        422,
        "benefit_kinds",
        body=subscription(filters={"benefit_kinds": ["a\x00b"]}),
    ),
    Case(
        "minimum amount beyond bigint",
        "POST",
        "/v1/subscriptions",
        422,
        "min_amount_cny",
        body=subscription(filters={"min_amount_cny": 2**70}),
    ),
    # the published bound was compared as a float by clients (2**63 - 1 rounds up)
    Case(
        "minimum amount past the JSON-safe integers",
        "POST",
        "/v1/subscriptions",
        422,
        "min_amount_cny",
        body=subscription(filters={"min_amount_cny": 2**53}),
    ),
    # pydantic's \d takes any Unicode digit, the published (ECMA) \d only ASCII ones
    Case(
        "a non-ASCII digit in the region prefix",
        "POST",
        "/v1/subscriptions",
        422,
        "region_prefix",
        body=subscription(filters={"region_prefix": "\u0663"}),
    ),
    Case(
        "NUL in a robot's secret",
        "POST",
        "/v1/subscriptions",
        422,
        "secret",
        body=subscription(
            channel="dingtalk", email=None, url="https://robot.example.invalid/x", secret="a\x00b"
        ),
    ),
    Case(
        "a dingtalk robot without its secret",
        "POST",
        "/v1/subscriptions",
        422,
        "secret",
        body=subscription(channel="dingtalk", email=None, url="https://robot.example.invalid/x"),
    ),
    # a schema-valid url breaking the egress rule (DNS) was a 422, the schema-mismatch status
    Case(
        "a webhook url whose host does not resolve",
        "POST",
        "/v1/subscriptions",
        400,
        "url",
        body=subscription(channel="webhook", email=None, url="https://hook.example.invalid/x"),
    ),
    Case(
        "NUL in a patched e-mail address",
        "PATCH",
        "/v1/subscriptions/{subscription_id}",
        422,
        "email",
        body=json.dumps({"email": "a\x00b@example.com"}),
    ),
    # lax validation read a boolean as an integer, against the published type
    Case(
        "a boolean as deadline_days",
        "POST",
        "/v1/subscriptions",
        422,
        "deadline_days",
        body=subscription(deadline_days=True),
    ),
    Case(
        "a boolean as min_amount_cny",
        "POST",
        "/v1/subscriptions",
        422,
        "min_amount_cny",
        body=subscription(filters={"min_amount_cny": True}),
    ),
    # a rule of the stored subscription, which no schema can state: 400, not 422
    Case(
        "a url on an email subscription",
        "PATCH",
        "/v1/subscriptions/{subscription_id}",
        400,
        "url",
        body=json.dumps({"url": "https://example.com/hook"}),
    ),
    # query parameters
    Case(
        "a time before year 1 in UTC",
        "POST",
        "/v1/deliveries/replay",
        422,
        "since",
        params={"since": "0001-01-01T00:00:00+11:01"},
    ),
    Case(
        "a time after year 9999 in UTC",
        "GET",
        "/v1/deliveries",
        422,
        "since",
        params={"since": "9999-12-31T23:59:59-01:00"},
    ),
    # a number was taken as Unix time, against the published format: date-time
    Case(
        "a number as the replay time",
        "POST",
        "/v1/deliveries/replay",
        422,
        "since",
        params={"since": "0.5"},
    ),
    Case(
        "a cursor holding a time before year 1 in UTC",
        "GET",
        "/v1/deliveries",
        400,
        "cursor",
        params={"cursor": CURSOR_BEFORE_YEAR_1},
    ),
    Case(
        "NUL in the enterprise filter",
        "GET",
        "/v1/subscriptions",
        422,
        "enterprise_id",
        params={"enterprise_id": NUL},
    ),
]


@pytest.fixture(scope="module")
async def notify(
    embedded_postgres: EmbeddedPostgres, embedded_broker: EmbeddedBroker
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    async with service_client("notify", embedded_postgres, embedded_broker) as (_, client):
        created = await client.post("/v1/subscriptions", json=json.loads(subscription()))
        assert created.status_code == 201, created.text
        yield client, {"subscription_id": created.json()["id"]}


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_bad_input_is_refused_naming_the_field(
    notify: tuple[httpx.AsyncClient, dict[str, str]], case: Case
) -> None:
    client, ids = notify
    check(await send(client, case, ids), case)
