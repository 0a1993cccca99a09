"""Every list and free-text field that feeds an event is bounded: over a limit the API
answers 422 naming the field (the import: a row error), and nothing is stored, so no
event is written that the broker could not take."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from registry_helpers import RegistryClient, new_enterprise, running_registry

from reelpolicy_common.outbox.store import MAX_EVENT_BYTES
from reelpolicy_registry.domain import records
from reelpolicy_registry.domain.events import enterprise_event, production_event
from reelpolicy_registry.domain.records import StoredEnterprise, StoredProduction

pytestmark = pytest.mark.servers

WIDE = "政" * 64  # the longest tag, three bytes a character


@pytest.fixture
async def registry(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RegistryClient]:
    async with running_registry(fresh_database, bootstrap_servers) as running:
        yield running


def fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


async def stored(registry: RegistryClient) -> tuple[int, int, int]:
    return (
        await registry.fetchval("SELECT count(*) FROM enterprises"),
        await registry.fetchval("SELECT coalesce(max(version), 0) FROM enterprises"),
        await registry.fetchval("SELECT count(*) FROM outbox"),
    )


async def test_too_many_or_too_long_tags_answer_422_and_store_nothing(
    registry: RegistryClient,
) -> None:
    too_many = await registry.client.post(
        "/v1/enterprises", json=new_enterprise(tags=[f"t{i}" for i in range(records.MAX_TAGS + 1)])
    )
    assert too_many.status_code == 422, too_many.text
    assert fields(too_many) == ["tags"]
    too_long = await registry.client.post(
        "/v1/enterprises", json=new_enterprise(tags=["ok", "x" * 65])
    )
    assert too_long.status_code == 422
    assert fields(too_long) == ["tags.1"]
    assert await stored(registry) == (0, 0, 0)

    created = await registry.enterprise(tags=[WIDE] * records.MAX_TAGS)  # at the limit
    before = await stored(registry)
    company = await registry.company_client(created["id"])
    # ~900 KB of tags in one merge patch (under the 1 MiB body limit): its event would
    # have been over what a broker takes, and blocked the registry's outbox
    huge = await company.patch(f"/v1/enterprises/{created['id']}", json={"tags": [WIDE] * 4500})
    assert huge.status_code == 422, huge.text
    assert fields(huge) == ["tags"]
    assert "at most 50" in huge.json()["errors"][0]["message"]
    assert await stored(registry) == before


async def test_region_history_is_bounded_even_when_a_move_appends_to_it(
    registry: RegistryClient,
) -> None:
    history = [
        {"region_code": "310117", "since": str(date(2000, 1, 1) + timedelta(days=i))}
        for i in range(records.MAX_REGION_HISTORY + 1)
    ]
    over = await registry.client.post(
        "/v1/enterprises", json=new_enterprise(region_history=history)
    )
    assert over.status_code == 422
    assert fields(over) == ["region_history"]

    full = await registry.enterprise(region_history=history[:-1])
    eid = full["id"]
    moved = await registry.client.patch(f"/v1/enterprises/{eid}", json={"region_code": "310112"})
    # a bound the patch's schema cannot state (the move appends to the stored history)
    assert moved.status_code == 400, moved.text
    assert fields(moved) == ["region_history"]
    trimmed = await registry.client.patch(
        f"/v1/enterprises/{eid}",
        json={"region_code": "310112", "region_history": history[1:-1]},
    )
    assert trimmed.status_code == 200, trimmed.text
    assert len(trimmed.json()["region_history"]) == records.MAX_REGION_HISTORY - 1


async def test_production_lists_are_bounded(registry: RegistryClient) -> None:
    eid = (await registry.enterprise())["id"]
    grant = {"issuer_level": "municipal", "amount_cny": 1, "received_on": "2024-01-01"}
    cases = {
        "filming_region_codes": ["310110"] * (records.MAX_FILMING_REGIONS + 1),
        "grants": [grant] * (records.MAX_GRANTS + 1),
        "platforms": ["douyin"] * (records.MAX_VOCABULARY_ITEMS + 1),
        "overseas": {"markets": ["US"] * (records.MAX_MARKETS + 1)},
    }
    for field, value in cases.items():
        answer = await registry.client.post(
            "/v1/productions", json={"enterprise_id": eid, "title": "Drama", field: value}
        )
        assert answer.status_code == 422, (field, answer.text)
        assert fields(answer) == [field if field != "overseas" else "overseas.markets"]
    production = await registry.production(eid)
    patched = await registry.client.patch(
        f"/v1/productions/{production['id']}", json={"grants": cases["grants"]}
    )
    assert patched.status_code == 422
    assert fields(patched) == ["grants"]
    assert await registry.fetchval("SELECT count(*) FROM productions") == 1


async def test_an_import_row_over_a_limit_is_a_row_error(registry: RegistryClient) -> None:
    rows = [
        {"type": "enterprise", **new_enterprise(region="310110")},
        {"type": "enterprise", **new_enterprise(region="310117", tags=["t"] * 51)},
    ]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    report = await registry.client.post(
        "/v1/import", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert report.status_code == 200, report.text
    assert (report.json()["accepted"], report.json()["rejected"]) == (1, 1)
    assert [(e["row"], e["field"]) for e in report.json()["errors"]] == [(2, "tags")]


async def test_the_limits_are_documented_in_openapi(registry: RegistryClient) -> None:
    schemas = (await registry.client.get("/openapi.json")).json()["components"]["schemas"]
    enterprise = schemas["EnterpriseInput"]["properties"]
    assert enterprise["tags"]["maxItems"] == records.MAX_TAGS
    assert enterprise["region_history"]["maxItems"] == records.MAX_REGION_HISTORY
    assert enterprise["name"]["maxLength"] == 200
    production = schemas["ProductionInput"]["properties"]
    assert production["grants"]["anyOf"][0]["maxItems"] == records.MAX_GRANTS


def test_a_record_at_every_limit_still_fits_in_one_event() -> None:
    """The limits agree with the outbox's bound: the largest record the API accepts
    makes an event well under ``MAX_EVENT_BYTES``."""
    now = datetime(2024, 1, 1, tzinfo=UTC)
    wide = "政" * 200
    enterprise = records.validate_enterprise(
        new_enterprise(
            name=wide,
            tags=[WIDE] * records.MAX_TAGS,
            region_history=[{"region_code": "310117", "since": "2020-01-01"}]
            * records.MAX_REGION_HISTORY,
        )
    )
    grant = {
        "issuer_level": "municipal",
        "issuer_region_code": "310110",
        "amount_cny": 10**15,
        "received_on": "2024-01-01",
        "programme": wide,
    }
    production = records.validate_production(
        {
            "enterprise_id": "e" * 36,
            "external_id": "x" * 120,
            "title": "政" * 300,
            "filming_region_codes": ["310110"] * records.MAX_FILMING_REGIONS,
            "platforms": ["tencent_video"] * records.MAX_VOCABULARY_ITEMS,
            "themes": ["yellow_river_culture"] * records.MAX_VOCABULARY_ITEMS,
            "awards": ["nrta_outstanding_work"] * records.MAX_VOCABULARY_ITEMS,
            "grants": [grant] * records.MAX_GRANTS,
            "overseas": {
                "markets": ["US"] * records.MAX_MARKETS,
                "languages": ["zh-Hans"] * records.MAX_LANGUAGES,
            },
        }
    )
    stamp = {"created_at": now, "updated_at": now}
    sizes = [
        len(
            enterprise_event(
                StoredEnterprise("e" * 36, 1, enterprise.model_dump(mode="json"), None, **stamp)
            ).to_bytes()
        ),
        len(
            production_event(
                StoredProduction("p" * 36, 1, production.model_dump(mode="json"), **stamp)
            ).to_bytes()
        ),
    ]
    assert max(sizes) < MAX_EVENT_BYTES // 4, sizes
