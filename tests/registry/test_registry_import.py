"""Bulk import and bad input at the boundary: idempotency, per-row reports, nothing half-done."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor

import pytest
from registry_helpers import RegistryClient, new_enterprise, running_registry

from reelpolicy_common.db.pool import connect, create_pool
from reelpolicy_common.outbox.store import lane_of
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import EventType, decode_envelope
from reelpolicy_datagen.registry_rows import generate_rows
from reelpolicy_registry.adapters.import_staging import PostgresImportStaging
from reelpolicy_registry.adapters.postgres import PostgresProductionRepository, RegistryUnitOfWork
from reelpolicy_registry.domain.events import EventHead, production_event
from reelpolicy_registry.domain.import_files import jsonl_rows
from reelpolicy_registry.handlers.imports import import_rows
from reelpolicy_registry.ports import ProductionStage
from service_harness import topic_events

pytestmark = pytest.mark.servers

JSONL = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
async def registry(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RegistryClient]:
    async with running_registry(
        fresh_database, bootstrap_servers, max_body_bytes=4096, import_chunk_rows=150
    ) as running:
        yield running


def jsonl(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


async def test_import_is_idempotent_and_emits_one_event_per_change(
    registry: RegistryClient,
) -> None:
    rows = list(generate_rows(enterprises=40, productions=400, seed=3))
    first = await registry.client.post("/v1/import", content=jsonl(rows), headers=JSONL)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 440, "unchanged": 0, "rejected": 0, "errors": []}
    assert await registry.fetchval("SELECT count(*) FROM productions") == 400
    assert await registry.fetchval("SELECT count(*) FROM outbox") == 440
    row_fields = "attributes ?| array['type', 'enterprise_credit_code']"  # the file's, not stored
    assert await registry.fetchval(f"SELECT count(*) FROM enterprises WHERE {row_fields}") == 0
    assert await registry.fetchval(f"SELECT count(*) FROM productions WHERE {row_fields}") == 0

    again = await registry.client.post("/v1/import", content=jsonl(rows), headers=JSONL)
    assert again.json() == {"accepted": 0, "unchanged": 440, "rejected": 0, "errors": []}
    assert await registry.fetchval("SELECT count(*) FROM outbox") == 440

    rows[0]["employees"] = 4321
    rows[100]["title"] = "Renamed"
    third = await registry.client.post("/v1/import", content=jsonl(rows), headers=JSONL)
    assert (third.json()["accepted"], third.json()["unchanged"]) == (2, 438)
    third_changed = {
        str(await registry.fetchval("SELECT id FROM enterprises WHERE version = 2")),
        str(await registry.fetchval("SELECT enterprise_id FROM productions WHERE version = 2")),
    }
    version = await registry.fetchval(
        "SELECT version FROM productions WHERE attributes->>'title' = 'Renamed'"
    )
    assert version == 2

    eid = str(await registry.fetchval("SELECT id FROM enterprises ORDER BY id LIMIT 1"))
    owned = await registry.fetchval(
        "SELECT count(*) FROM productions WHERE enterprise_id = $1::uuid", eid
    )
    expected = 1 + owned + (1 if eid in third_changed else 0)
    events = await topic_events(
        registry.bootstrap, topics.REGISTRY, where=lambda e: e.key == eid, expected=expected
    )
    assert len(events) == expected
    assert events[0].type == EventType.enterprise_upserted
    assert all(e.payload["enterprise_id"] == eid for e in events)


async def test_productions_may_come_before_their_enterprise(registry: RegistryClient) -> None:
    rows = list(generate_rows(enterprises=30, productions=300, seed=5))
    rows.reverse()  # every production now precedes its enterprise, across chunks of 150
    missing = {
        "type": "production",
        "enterprise_credit_code": new_enterprise()["credit_code"],  # in no row, not stored
        "title": "Nobody's",
        "region_code": "310110",
    }
    rows.insert(10, missing)
    first = await registry.client.post("/v1/import", content=jsonl(rows), headers=JSONL)
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["accepted"], report["unchanged"], report["rejected"]) == (330, 0, 1)
    assert report["errors"] == [
        {"row": 11, "field": "enterprise_credit_code", "message": "no such enterprise"}
    ]
    assert await registry.fetchval("SELECT count(*) FROM productions") == 300
    assert await registry.fetchval("SELECT count(*) FROM outbox") == 330

    again = await registry.client.post("/v1/import", content=jsonl(rows), headers=JSONL)
    assert (again.json()["accepted"], again.json()["unchanged"]) == (0, 330)
    assert await registry.fetchval("SELECT count(*) FROM outbox") == 330


async def test_import_reports_bad_rows_and_loads_the_good_ones(registry: RegistryClient) -> None:
    good = new_enterprise()
    rows = [
        {"type": "enterprise", **good},
        {"type": "enterprise", **new_enterprise(region_code="999999")},
        {
            "type": "production",
            "enterprise_credit_code": good["credit_code"],
            "title": "A",
            "external_id": "a",
            "platforms": ["myspace"],
        },
        {"type": "production", "enterprise_credit_code": "nope", "title": "B"},
        {
            "type": "production",
            "enterprise_credit_code": good["credit_code"],
            "title": "C",
            "external_id": "c",
            "budget_cny": 800000,
        },
    ]
    body = jsonl(rows) + "{broken\n"
    report = (await registry.client.post("/v1/import", content=body, headers=JSONL)).json()
    assert (report["accepted"], report["rejected"]) == (2, 4)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (2, "region_code"),
        (3, "platforms.0"),
        (4, "enterprise_credit_code"),
        (6, "row"),
    ]


async def test_csv_import(registry: RegistryClient) -> None:
    e = new_enterprise(region="610113")
    csv_text = (
        "type,name,credit_code,region_code,kind,tags,enterprise_credit_code,external_id,title,"
        "platforms,budget_cny,metrics.views\n"
        f"enterprise,{e['name']},{e['credit_code']},610113,production_company,a;b,,,,,,\n"
        f"production,,,,,,{e['credit_code']},x1,Drama,douyin;hongguo,900000,1200\n"
    )
    headers = {"Content-Type": "text/csv"}
    first = await registry.client.post("/v1/import", content=csv_text, headers=headers)
    assert first.json() == {"accepted": 2, "unchanged": 0, "rejected": 0, "errors": []}
    stored = (await registry.client.get("/v1/productions")).json()["items"][0]
    assert stored["platforms"] == ["douyin", "hongguo"]
    assert stored["metrics"]["views"] == 1200
    again = await registry.client.post("/v1/import", content=csv_text, headers=headers)
    assert again.json()["unchanged"] == 2
    bad = await registry.client.post("/v1/import", content="type,colour\n", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "header"


LINE_SEPARATORS = "\u2028\u2029\u0085\x0b\x0c\x1c\x1d\x1e"
"""Every separator ``str.splitlines`` knows besides CR and LF: none ends a row."""


async def test_jsonl_keeps_unicode_line_separators_inside_a_row(registry: RegistryClient) -> None:
    e = new_enterprise()
    # JSON allows these raw in a string (the C0 controls of LINE_SEPARATORS it does not:
    # a row holding one raw is refused, as one row, below)
    title = "One\u2028two\u2029three\u0085four"
    rows = [
        {"type": "enterprise", **e},
        {"type": "production", "enterprise_credit_code": e["credit_code"], "title": title},
    ]
    body = jsonl(rows)
    assert title in body
    report = (await registry.client.post("/v1/import", content=body, headers=JSONL)).json()
    assert report == {"accepted": 2, "unchanged": 0, "rejected": 0, "errors": []}
    stored = (await registry.client.get("/v1/productions")).json()["items"]
    assert [p["title"] for p in stored] == [title]


async def test_jsonl_rows_are_numbered_by_their_line_in_the_file(registry: RegistryClient) -> None:
    e = new_enterprise()
    body = (
        json.dumps({"type": "enterprise", **e})
        + "\r\n"  # a CRLF file
        + '{"type": "production",\x0c"title": "form feed is not JSON whitespace"}\r\n'
        + "\r\n"
        + '{"type": "production",\u2028"title": "nor is U+2028"}\n'
        + '{"type": "production",\r"title": "CR is", "enterprise_credit_code": "nope"}\n'
    )
    report = (await registry.client.post("/v1/import", content=body, headers=JSONL)).json()
    assert (report["accepted"], report["rejected"]) == (1, 3)
    assert sorted({(e["row"], e["field"]) for e in report["errors"]}) == [
        (2, "row"),
        (4, "row"),
        (5, "enterprise_credit_code"),
    ]


async def test_csv_quoted_cells_keep_their_line_breaks(registry: RegistryClient) -> None:
    e = new_enterprise()
    title = f"First line\r\nsecond\nthird\rfourth{LINE_SEPARATORS}end"
    quoted = '"' + title + '"'
    csv_text = (
        "type,name,credit_code,region_code,kind,enterprise_credit_code,external_id,title\r\n"
        f"enterprise,{e['name']},{e['credit_code']},310110,production_company,,,\r\n"
        f"production,,,,,{e['credit_code']},x1,{quoted}\r\n"
    )
    headers = {"Content-Type": "text/csv"}
    report = (await registry.client.post("/v1/import", content=csv_text, headers=headers)).json()
    assert report == {"accepted": 2, "unchanged": 0, "rejected": 0, "errors": []}
    stored = (await registry.client.get("/v1/productions")).json()["items"]
    assert [p["title"] for p in stored] == [title]


async def test_csv_rows_are_numbered_by_the_line_their_record_starts_on(
    registry: RegistryClient,
) -> None:
    e = new_enterprise()
    csv_text = (
        "type,name,credit_code,region_code,kind,enterprise_credit_code,external_id,title\n"
        f"enterprise,{e['name']},{e['credit_code']},310110,production_company,,,\n"
        f'production,,,,,{e["credit_code"]},x1,"spans\nthree\nlines"\n'
        "\n"
        f"production,,,,,{e['credit_code']},x2,bad,extra\n"
        'production,,,,,nope,x3,"two\u2028lines"\n'
    )
    headers = {"Content-Type": "text/csv"}
    report = (await registry.client.post("/v1/import", content=csv_text, headers=headers)).json()
    assert (report["accepted"], report["rejected"]) == (2, 2)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (7, "row"),
        (8, "enterprise_credit_code"),
    ]


async def test_bad_input_corpus_changes_nothing(registry: RegistryClient) -> None:
    client = registry.client
    owner = await registry.enterprise()
    eid = owner["id"]
    before = await registry.snapshot()
    wrong_check = new_enterprise()
    wrong_check["credit_code"] = wrong_check["credit_code"][:-1] + (
        "0" if wrong_check["credit_code"][-1] != "0" else "1"
    )
    corpus: list[tuple[str, str, dict[str, object], int, str]] = [
        # rules the schema cannot state: 400
        ("POST", "/v1/enterprises", {"json": wrong_check}, 400, "credit_code"),
        (
            "POST",
            "/v1/enterprises",
            {"json": new_enterprise(region_code="999999")},
            400,
            "region_code",
        ),
        (
            "POST",
            "/v1/enterprises",
            {"json": new_enterprise(registered_capital_cny=-5)},
            422,
            "registered_capital_cny",
        ),
        ("POST", "/v1/enterprises", {"json": new_enterprise(colour="red")}, 422, "colour"),
        (
            "POST",
            "/v1/enterprises",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            422,
            "",
        ),
        ("POST", "/v1/enterprises", {"json": new_enterprise(name="x" * 5000)}, 413, "body"),
        (
            "POST",
            "/v1/productions",
            {"json": {"enterprise_id": eid, "title": "T", "platforms": ["myspace"]}},
            422,
            "platforms.0",
        ),
        (
            "POST",
            "/v1/productions",
            {"json": {"enterprise_id": eid, "title": "T", "budget_cny": -1}},
            422,
            "budget_cny",
        ),
        (
            "POST",
            "/v1/productions",
            {"json": {"enterprise_id": "00000000-0000-0000-0000-000000000000", "title": "T"}},
            404,
            "enterprise_id",
        ),
        (
            "POST",
            "/v1/productions",
            {"json": {"enterprise_id": "not-a-uuid", "title": "T"}},
            404,
            "enterprise_id",
        ),
        (
            "PATCH",
            f"/v1/enterprises/{eid}",
            {"json": {"region_code": "999999"}},
            400,
            "region_code",
        ),
        (
            "PATCH",
            f"/v1/enterprises/{eid}",
            {"json": {"credit_code": wrong_check["credit_code"]}},
            400,
            "credit_code",
        ),
        ("PATCH", f"/v1/enterprises/{eid}", {"json": [1, 2]}, 422, "body"),
        (
            "PATCH",
            f"/v1/enterprises/{eid}",
            {"json": {"sme": True}, "headers": {"If-Match": "7"}},
            412,
            "If-Match",
        ),
        (
            "PATCH",
            f"/v1/enterprises/{eid}",
            {"json": {"sme": True}, "headers": {"If-Match": "seven"}},
            400,
            "If-Match",
        ),
        ("DELETE", f"/v1/enterprises/{eid}", {"headers": {"If-Match": "9"}}, 412, "If-Match"),
        ("POST", "/v1/import", {"content": "{bad\n", "headers": JSONL}, 422, "rows[1].row"),
        (
            "POST",
            "/v1/import",
            {"content": "a,b\n1,2\n", "headers": {"Content-Type": "text/csv"}},
            400,
            "header",
        ),
        (
            "POST",
            "/v1/import",
            {"content": "x", "headers": {"Content-Type": "text/plain"}},
            415,
            "Content-Type",
        ),
        ("POST", "/v1/import", {"content": b"\xff\xfe\x00", "headers": JSONL}, 400, "body"),
    ]
    for method, path, kwargs, status, field in corpus:
        response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == status, (path, kwargs, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == status, problem
        assert problem["detail"], problem
        errors = problem["errors"]
        assert isinstance(errors, list)
        assert errors[0]["message"]
        if field:
            assert field in {e.get("field") for e in errors}, (field, errors)
    assert await registry.snapshot() == before


async def test_productions_without_external_id_are_not_imported_twice(
    registry: RegistryClient,
) -> None:
    owner = new_enterprise()
    plain = {
        "type": "production",
        "enterprise_credit_code": owner["credit_code"],
        "region_code": "410100",
        "budget_cny": 500_000,
    }
    rows = [
        {"type": "enterprise", **owner},
        {**plain, "title": "No key A"},
        {**plain, "title": "No key B"},
        {**plain, "title": "No key A"},  # the same row again, in the same file
    ]
    first = await registry.client.post("/v1/import", content=jsonl(rows), headers=JSONL)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "accepted": 3,
        "unchanged": 0,
        "rejected": 1,
        "errors": [{"row": 4, "field": "row", "message": "repeats row 2"}],
    }
    assert await registry.fetchval("SELECT count(*) FROM productions") == 2

    again = await registry.client.post("/v1/import", content=jsonl(rows[:3]), headers=JSONL)
    assert again.json() == {"accepted": 0, "unchanged": 3, "rejected": 0, "errors": []}
    assert await registry.fetchval("SELECT count(*) FROM productions") == 2
    assert await registry.fetchval("SELECT count(*) FROM outbox") == 3

    rows[2]["title"] = "No key B, retitled"  # without a key this is another production
    third = await registry.client.post("/v1/import", content=jsonl(rows[:3]), headers=JSONL)
    assert (third.json()["accepted"], third.json()["unchanged"]) == (1, 2)
    titles = await registry.fetchval(
        "SELECT array_agg(attributes->>'title' ORDER BY attributes->>'title') FROM productions"
    )
    assert titles == ["No key A", "No key B", "No key B, retitled"]


async def assert_events_are_the_api_paths_events(dsn: str, *, after_seq: int = 0) -> int:
    """Each production event in the outbox after ``after_seq`` decodes to exactly the
    event the API path would emit for the stored production, in its key's lane, after
    its enterprise's event; returns how many there were."""
    conn = await connect(dsn)
    try:
        outbox = await conn.fetch("SELECT * FROM outbox ORDER BY seq")
        repository = PostgresProductionRepository(conn)
        seen_enterprises: set[str] = set()
        productions = 0
        for row in outbox:
            event = decode_envelope(row["value"])
            assert row["lane"] == lane_of(event.key)
            assert row["headers"]["event-type"] == row["event_type"] == event.type.value
            if event.type is EventType.enterprise_upserted:
                seen_enterprises.add(event.key)
            if event.type is EventType.enterprise_upserted or row["seq"] <= after_seq:
                continue
            stored = await repository.get(event.payload["production_id"])
            assert stored is not None
            expected = production_event(stored)
            assert event.key in seen_enterprises  # its enterprise's event came first
            assert (event.type, event.key, event.producer, event.schema_version) == (
                expected.type,
                expected.key,
                expected.producer,
                expected.schema_version,
            )
            assert event.payload == expected.payload
            assert row["event_id"] == event.event_id
            productions += 1
        return productions
    finally:
        await conn.close()


async def test_imported_production_events_are_the_api_paths_events(
    registry: RegistryClient,
) -> None:
    """Both ways the import writes productions announce them as the API would, the
    database building the events (``adapters.import_staging``): those of enterprises it creates
    (inserted as new) and the others (upserted)."""
    rows = list(generate_rows(enterprises=3, productions=30, seed=8))
    unkeyed = {k: v for k, v in rows[-1].items() if k != "external_id"} | {"title": "No key"}
    rows.append(unkeyed)
    first = await registry.client.post("/v1/import", content=jsonl(rows), headers=JSONL)
    assert first.json()["accepted"] == 34, first.text
    assert await assert_events_are_the_api_paths_events(registry.dsn) == 31
    last_seq = await registry.fetchval("SELECT max(seq) FROM outbox")

    rows[5]["title"] = "Renamed"  # a production of a stored enterprise: upserted
    added = {**rows[4], "external_id": "added-1", "title": "Added"}
    added_unkeyed = {**unkeyed, "title": "Added, no key"}
    rows += [added, added_unkeyed]
    second = await registry.client.post("/v1/import", content=jsonl(rows), headers=JSONL)
    assert (second.json()["accepted"], second.json()["unchanged"]) == (3, 33), second.text
    assert await assert_events_are_the_api_paths_events(registry.dsn, after_seq=last_seq) == 3
    assert await registry.fetchval("SELECT count(*) FROM productions WHERE version = 2") == 1


async def test_chunks_written_at_once_store_each_row_once_after_its_enterprise(
    fresh_database: str, bootstrap_servers: str
) -> None:
    """Chunks of 20 rows, up to three written at once, on the real database: every row
    is stored and announced once, and each enterprise's event precedes its productions'
    (the enterprises' chunks commit before any chunk that needs them is read)."""
    rows = list(generate_rows(enterprises=25, productions=600, seed=12))
    mixed = rows[:10] + rows[25:325] + rows[10:25] + rows[325:]  # enterprises mid-file
    async with running_registry(
        fresh_database, bootstrap_servers, import_chunk_rows=20, import_writers=3
    ) as registry:
        first = await registry.client.post("/v1/import", content=jsonl(mixed), headers=JSONL)
        assert first.json() == {"accepted": 625, "unchanged": 0, "rejected": 0, "errors": []}
        again = await registry.client.post("/v1/import", content=jsonl(mixed), headers=JSONL)
        assert again.json() == {"accepted": 0, "unchanged": 625, "rejected": 0, "errors": []}
        assert await registry.fetchval("SELECT count(*) FROM productions") == 600
    conn = await connect(fresh_database)
    try:
        outbox = await conn.fetch("SELECT key, event_type FROM outbox ORDER BY seq")
    finally:
        await conn.close()
    assert len(outbox) == 625
    announced: set[str] = set()
    for row in outbox:  # in seq order: the relay's order within a key
        if row["event_type"] == EventType.enterprise_upserted.value:
            announced.add(row["key"])
        else:
            assert row["key"] in announced, row
    assert len(announced) == 25


async def test_a_production_created_meanwhile_sends_its_chunk_to_the_upsert(
    fresh_database: str, bootstrap_servers: str
) -> None:
    """Productions of an enterprise the import created are inserted as new. If one of
    them was created meanwhile through the API (same external id), that chunk is upserted
    instead: nothing is duplicated, and each change is announced once."""
    enterprise, *productions = generate_rows(enterprises=1, productions=4, seed=4)
    raced = productions[1]
    raced_ids: list[str] = []

    class RacingLoader(PostgresImportStaging):
        async def insert_new_productions(
            self, rows: list[ProductionStage], *, events: EventHead
        ) -> bool:
            if rows[0][2] == raced["external_id"]:  # the API is quicker than the import
                raced_ids.append(
                    (await registry.production(rows[0][1], external_id=raced["external_id"]))["id"]
                )
            return await super().insert_new_productions(rows, events=events)

    class RacingUnitOfWork(RegistryUnitOfWork):
        async def __aenter__(self) -> RacingUnitOfWork:
            await super().__aenter__()
            self.import_staging = RacingLoader(self.conn)
            return self

    async with running_registry(fresh_database, bootstrap_servers) as registry:
        pool = await create_pool(fresh_database)
        try:
            report = await import_rows(
                uow=lambda: RacingUnitOfWork(pool),
                rows=jsonl_rows(jsonl([enterprise, *productions]).splitlines()),
                chunk_rows=1,
            )
        finally:
            await pool.close()
        assert (report.accepted, report.unchanged, report.rejected) == (5, 0, 0)
        stored = await registry.fetch(
            "SELECT id::text, version, attributes->>'title' AS title FROM productions"
            " WHERE external_id = $1",
            raced["external_id"],
        )
        assert [tuple(r) for r in stored] == [(raced_ids[0], 2, raced["title"])]
        assert await registry.fetchval("SELECT count(*) FROM productions") == 4
        versions = await registry.fetch(
            "SELECT value FROM outbox WHERE event_type = 'production.upserted'"
        )
    by_production = sorted(
        (e.payload["production_id"] == raced_ids[0], e.payload["version"])
        for e in (decode_envelope(v["value"]) for v in versions)
    )
    assert by_production == [(False, 1), (False, 1), (False, 1), (True, 1), (True, 2)]


async def test_the_service_validates_in_its_worker_process_and_stops_it(
    fresh_database: str, bootstrap_servers: str
) -> None:
    """With IMPORT_PROCESSES=1 (the default) the service's imports are validated in one
    worker process, which it stops with the service."""
    rows = list(generate_rows(enterprises=2, productions=20, seed=6))
    async with running_registry(fresh_database, bootstrap_servers, import_chunk_rows=5) as svc:
        validators = svc.app.state.registry.import_validators
        assert isinstance(validators, ProcessPoolExecutor)
        first = await svc.client.post("/v1/import", content=jsonl(rows), headers=JSONL)
        assert first.json()["accepted"] == 22, first.text
        worker_pids = {p.pid for p in multiprocessing.active_children()}
        assert len(worker_pids & set(validators._processes)) == 1
    with pytest.raises(RuntimeError, match="shutdown"):
        validators.submit(len, [])
