"""The rules API's bad-input corpus (see ``tests/bad_input.py``): one row per finding."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bad_input import NUL, Case, check, deep_policy_json, policy_json, send, service_client
from reelpolicy_devstack.servers import EmbeddedBroker, EmbeddedPostgres

pytestmark = pytest.mark.servers

CASES = [
    # found by the fuzzer: a NUL reached the projection query (500)
    Case(
        "eligibility production_id with NUL",
        "GET",
        "/v1/eligibility",
        422,
        "production_id",
        params={"production_id": NUL, "include_ineligible": "true"},
    ),
    Case(
        "eligibility enterprise_id with NUL",
        "GET",
        "/v1/eligibility",
        422,
        "enterprise_id",
        params={"enterprise_id": NUL},
    ),
    Case(
        "history subject_id with NUL", "GET", "/v1/eligibility/a%00b/p/history", 422, "subject_id"
    ),
    Case("history policy_id with NUL", "GET", "/v1/eligibility/s/a%00b/history", 422, "policy_id"),
    # a draft document is held to what could be stored: a rule of the language (400)
    Case(
        "simulate: NUL in a draft's notes",
        "POST",
        "/v1/simulate",
        400,
        "notes",
        body=policy_json(notes="a\x00b"),
    ),
    Case(
        "simulate: lone surrogate in a draft's title",
        "POST",
        "/v1/simulate",
        400,
        "title",
        body=policy_json(title={"zh": "\ud800", "en": "x"}),
    ),
    # found by review: deep criteria passed validation, then exhausted the stack
    Case(
        "simulate: criteria nested 300 deep",
        "POST",
        "/v1/simulate",
        400,
        "MAX_CRITERIA_DEPTH",
        body=deep_policy_json(300),
    ),
    # so deep the JSON parser itself gives up: a rule of the language, named (FastAPI's
    # own parser answered an undocumented 400 "There was an error parsing the body")
    Case(
        "simulate: criteria nested 1,000 deep",
        "POST",
        "/v1/simulate",
        400,
        "MAX_DOCUMENT_DEPTH",
        body=deep_policy_json(1000),
    ),
    # found by the fuzzer: text that is not UTF-8 was FastAPI's undocumented 400
    Case(
        "simulate: body not UTF-8",
        "POST",
        "/v1/simulate",
        422,
        "not parseable",
        body="z\udcff",
    ),
    Case(
        "simulate: a JSON array", "POST", "/v1/simulate", 422, "expected a JSON object", body="[]"
    ),
]


@pytest.fixture(scope="module")
async def rules(
    embedded_postgres: EmbeddedPostgres, embedded_broker: EmbeddedBroker
) -> AsyncIterator[httpx.AsyncClient]:
    async with service_client("rules", embedded_postgres, embedded_broker) as (_, client):
        yield client


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_bad_input_is_refused_naming_the_field(rules: httpx.AsyncClient, case: Case) -> None:
    check(await send(rules, case, {}), case)
