"""The ingest API's bad-input corpus (see ``tests/bad_input.py``): one row per finding."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from bad_input import (
    NUL,
    POLICY_ID,
    Case,
    check,
    deep_policy_json,
    policy_document,
    policy_json,
    send,
    service_client,
)
from reelpolicy_devstack.servers import EmbeddedBroker, EmbeddedPostgres

pytestmark = pytest.mark.servers

YAML = "application/yaml"


def _with_criteria_value(value: int) -> str:
    doc = policy_document()
    doc["criteria"] = {"field": "enterprise.employees", "op": "gte", "value": value}
    return json.dumps(doc)


def _with_amount(amount: int) -> str:
    doc = policy_document()
    doc["benefits"] = [{**doc["benefits"][0], "max_amount_cny": amount}]
    return json.dumps(doc)


CASES = [
    # found by the fuzzer: an integer beyond PostgreSQL's integer reached the query (500)
    Case(
        "version beyond integer",
        "GET",
        f"/v1/policies/{POLICY_ID}/versions/4398046511104",
        422,
        "version",
    ),
    # text PostgreSQL cannot store passed validation, then failed in the jsonb insert
    Case(
        "NUL in notes (JSON)",
        "POST",
        "/v1/policies",
        400,
        "notes",
        body=policy_json(notes="a\x00b"),
    ),
    Case(
        "lone surrogate in title (JSON)",
        "POST",
        "/v1/policies",
        400,
        "title.zh",
        body=policy_json(title={"zh": "a\ud800b", "en": "x"}),
    ),
    Case(
        "NUL escape in notes (YAML)",
        "POST",
        "/v1/policies",
        400,
        "notes",
        body=f'{policy_json()[:-1]}, "notes": "a\\0b"}}',
        content_type=YAML,
    ),
    Case(
        "lone surrogate escape in notes (YAML)",
        "POST",
        "/v1/policies",
        400,
        "notes",
        body=f'{policy_json()[:-1]}, "notes": "a\\udc80b"}}',
        content_type=YAML,
    ),
    Case(
        "NUL in a revocation reason",
        "DELETE",
        f"/v1/policies/{POLICY_ID}",
        422,
        "reason",
        params={"reason": NUL},
    ),
    # numbers the engine or the database cannot hold
    Case(
        "criteria value beyond 64 bits",
        "POST",
        "/v1/policies",
        400,
        "value",
        body=_with_criteria_value(10**30),
    ),
    Case(
        "amount beyond bigint",
        "POST",
        "/v1/policies",
        400,
        "max_amount_cny",
        body=_with_amount(10**20),
    ),
    Case(
        "integer of 5,000 digits",
        "POST",
        "/v1/policies",
        400,
        "not parseable",
        body=_with_criteria_value(0).replace('"value": 0', '"value": ' + "9" * 5000),
    ),
    # found by review: deep criteria passed validation, then exhausted the stack
    Case(
        "criteria nested 300 deep (JSON)",
        "POST",
        "/v1/policies",
        400,
        "MAX_CRITERIA_DEPTH",
        body=deep_policy_json(300),
    ),
    Case(
        "criteria nested 1,000 deep (JSON)",
        "POST",
        "/v1/policies",
        400,
        "MAX_DOCUMENT_DEPTH",
        body=deep_policy_json(1000),
    ),
    Case(
        "criteria nested 300 deep (YAML)",
        "POST",
        "/v1/policies",
        400,
        "MAX_CRITERIA_DEPTH",
        body=deep_policy_json(300),
        content_type=YAML,
    ),
    # the request schema is a JSON object: a body that is not one breaks it (422)
    Case("a JSON array", "POST", "/v1/policies", 422, "expected a JSON object", body="[]"),
    Case("JSON not UTF-8", "POST", "/v1/policies", 422, "not parseable", body="{\udcff}"),
    # found by review: a cursor no page gave decoded to a NUL and reached the query (500)
    Case("cursor hiding a NUL", "GET", "/v1/policies", 400, "cursor", params={"cursor": "YQA="}),
    Case(
        "criteria nested 1,000 deep (YAML)",
        "POST",
        "/v1/policies",
        413,
        "MAX_DOCUMENT_DEPTH",
        body=deep_policy_json(1000),
        content_type=YAML,
    ),
]


@pytest.fixture(scope="module")
async def ingest(
    embedded_postgres: EmbeddedPostgres, embedded_broker: EmbeddedBroker
) -> AsyncIterator[httpx.AsyncClient]:
    async with service_client("ingest", embedded_postgres, embedded_broker) as (_, client):
        created = await client.post("/v1/policies", json=policy_document())
        assert created.status_code == 201, created.text
        yield client


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_bad_input_is_refused_naming_the_field(ingest: httpx.AsyncClient, case: Case) -> None:
    check(await send(ingest, case, {}), case)
    listed = await ingest.get("/v1/policies")  # and the service still answers
    assert listed.status_code == 200, listed.text


async def test_a_slow_document_does_not_stall_other_requests(ingest: httpx.AsyncClient) -> None:
    """Parsing runs off the event loop: while a large YAML document (tens of thousands of
    nodes: seconds of parsing) is read, other requests keep being answered."""
    numbers = ", ".join(str(i % 10) for i in range(20_000))
    body = f'{policy_json()[:-1]}, "notes": [{numbers}]}}'
    assert len(body) < 256 * 1024
    submit = asyncio.create_task(
        ingest.post("/v1/policies", content=body, headers={"Content-Type": YAML})
    )
    started = time.perf_counter()
    latencies = []
    while not submit.done():
        sent = time.perf_counter()
        answer = await ingest.get(f"/v1/policies/{POLICY_ID}")
        assert answer.status_code == 200, answer.text
        latencies.append(time.perf_counter() - sent)
    parsing = time.perf_counter() - started
    response = await submit
    assert response.status_code == 400, response.text  # notes must be text
    assert parsing > 0.5, parsing  # slow enough for a stall to show
    assert len(latencies) >= 5, (latencies, parsing)
    assert max(latencies) < parsing / 4, (max(latencies), parsing)
