"""The registry API's bad-input corpus (see ``tests/bad_input.py``): one row per finding."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bad_input import NUL, Case, check, send, service_client
from reelpolicy_datagen.registry_rows import credit_code
from reelpolicy_devstack.servers import EmbeddedBroker, EmbeddedPostgres

pytestmark = pytest.mark.servers

_rng = random.Random(22)


def enterprise(**changes: Any) -> dict[str, Any]:
    return {
        "name": f"Bad Input Media {_rng.randrange(10**6)}",
        "credit_code": credit_code(_rng, "310110"),
        "region_code": "310110",
        "kind": "production_company",
        **changes,
    }


def enterprise_json(**changes: Any) -> str:
    return json.dumps(enterprise(**changes))


def jsonl(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps({"type": "enterprise", **row}) + "\n" for row in rows)


def csv_with_grants(cell: str) -> str:
    good, bad = enterprise(), enterprise()
    lines = ["type,name,credit_code,region_code,kind,region_history"] + [
        f"enterprise,{e['name']},{e['credit_code']},310110,production_company,{history}"
        for e, history in ((good, ""), (bad, cell))
    ]
    return "\n".join(lines) + "\n"


def csv_with_name(name: str) -> str:
    good, bad = enterprise(), enterprise(name=name)
    lines = ["type,name,credit_code,region_code,kind"] + [
        f"enterprise,{e['name']},{e['credit_code']},310110,production_company" for e in (good, bad)
    ]
    return "\n".join(lines) + "\n"


CASES = [
    # found by the fuzzer: unusual unicode inside tags reached the insert (500)
    Case(
        "NUL in tags", "POST", "/v1/enterprises", 422, "tags", body=enterprise_json(tags=["a\x00b"])
    ),
    Case(
        "lone surrogate in tags",
        "POST",
        "/v1/enterprises",
        422,
        "tags",
        body=enterprise_json(tags=["a\ud800b"]),
    ),
    Case(
        "NUL in name", "POST", "/v1/enterprises", 422, "name", body=enterprise_json(name="a\x00b")
    ),
    Case(
        "NUL in a production's external_id",
        "POST",
        "/v1/productions",
        422,
        "external_id",
        body=json.dumps({"enterprise_id": "{enterprise_id}", "title": "t", "external_id": "\x00"}),
    ),
    Case(
        "lone surrogate in a patched title",
        "PATCH",
        "/v1/productions/{production_id}",
        422,
        "title",
        body=json.dumps({"title": "\udfff"}),
    ),
    Case(
        "NUL in an API key's label",
        "POST",
        "/v1/api-keys",
        422,
        "label",
        body=json.dumps({"role": "operator", "label": "a\x00b"}),
    ),
    # query and path parameters
    Case("NUL in the tag filter", "GET", "/v1/enterprises", 422, "tag", params={"tag": NUL}),
    Case("NUL in the name filter", "GET", "/v1/enterprises", 422, "q", params={"q": NUL}),
    Case("NUL in a key id", "DELETE", "/v1/api-keys/a%00b", 422, "key_id"),
    # headers: a non-ASCII digit, and a version beyond the integer column
    Case(
        "If-Match with a superscript digit",
        "PATCH",
        "/v1/enterprises/{enterprise_id}",
        400,
        "If-Match",
        body="{}",
        headers={"If-Match": b"\xb2"},
    ),
    Case(
        "If-Match beyond integer",
        "PATCH",
        "/v1/enterprises/{enterprise_id}",
        400,
        "If-Match",
        body="{}",
        headers={"If-Match": b"4398046511104"},
    ),
    # found by the fuzzer: the published If-Match pattern is ASCII; the server took any
    # whitespace Python strips (U+00A0 here) around the version
    Case(
        "If-Match with a no-break space",
        "PATCH",
        "/v1/enterprises/{enterprise_id}",
        400,
        "If-Match",
        body="{}",
        headers={"If-Match": b"\xa01"},
    ),
    # merge patches name only patchable attributes (their published schema)
    Case(
        "a production patch naming its enterprise",
        "PATCH",
        "/v1/productions/{production_id}",
        422,
        "enterprise_id",
        body=json.dumps({"enterprise_id": "{enterprise_id}"}),
    ),
    # found by the fuzzer: a bound past 2**53 is not the same number to every JSON reader
    Case(
        "views beyond what a JSON float holds exactly",
        "PATCH",
        "/v1/productions/{production_id}",
        422,
        "metrics.views",
        body=json.dumps({"metrics": {"views": 2**53}}),
    ),
    # API keys: the body is one of two shapes, told apart by role
    Case(
        "an operator key with an unknown member",
        "POST",
        "/v1/api-keys",
        422,
        "enterprise",
        body=json.dumps({"role": "operator", "enterprise": "x"}),
    ),
    Case(
        "a company key of no enterprise",
        "POST",
        "/v1/api-keys",
        404,
        "enterprise_id",
        body=json.dumps({"role": "company", "enterprise_id": "no-such-enterprise"}),
    ),
    # imports: a row that PostgreSQL would refuse is a row error, not a failed COPY
    Case(
        "import: NUL in a JSONL row's tags",
        "POST",
        "/v1/import",
        200,
        '"field":"tags.0"',
        body=jsonl(enterprise(), enterprise(tags=["a\x00b"])),
        content_type="application/x-ndjson",
    ),
    # the row parser (pydantic's) refuses the escape itself: the row is unreadable
    Case(
        "import: lone surrogate in a JSONL row's name",
        "POST",
        "/v1/import",
        200,
        '"field":"row"',
        body=jsonl(enterprise(), enterprise(name="a\ud800b")),
        content_type="application/x-ndjson",
    ),
    Case(
        "import: NUL in a CSV row's name",
        "POST",
        "/v1/import",
        200,
        '"field":"name"',
        body=csv_with_name("a\x00b"),
        content_type="text/csv",
    ),
    Case(
        "import: a CSV JSON cell nested 5,000 deep",
        "POST",
        "/v1/import",
        200,
        '"field":"row"',
        body=csv_with_grants("[" * 5000 + "]" * 5000),
        content_type="text/csv",
    ),
]


@pytest.fixture(scope="module")
async def registry(
    embedded_postgres: EmbeddedPostgres, embedded_broker: EmbeddedBroker
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    async with service_client("registry", embedded_postgres, embedded_broker) as (_, client):
        created = await client.post("/v1/enterprises", json=enterprise())
        assert created.status_code == 201, created.text
        enterprise_id = created.json()["id"]
        production = await client.post(
            "/v1/productions", json={"enterprise_id": enterprise_id, "title": "t"}
        )
        assert production.status_code == 201, production.text
        yield client, {"enterprise_id": enterprise_id, "production_id": production.json()["id"]}


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_bad_input_is_refused_naming_the_field(
    registry: tuple[httpx.AsyncClient, dict[str, str]], case: Case
) -> None:
    client, ids = registry
    check(await send(client, case, ids), case)
