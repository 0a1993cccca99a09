"""``reelpolicy-<svc> outbox quarantined`` and ``outbox retry``, in every service."""

from __future__ import annotations

import asyncio
import importlib
import logging
import uuid
from collections.abc import Callable

import asyncpg
import pytest

from service_harness import migrate_service, service_env

pytestmark = pytest.mark.servers

SERVICES = ["registry", "ingest", "rules", "notify"]


def run_sql(dsn: str, sql: str) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(go())


def quarantine(dsn: str, *, topic: str, error: str) -> int:
    """A row as the relay leaves it in the quarantine (written to the outbox, then
    moved); returns its seq."""

    async def go() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            seq: int = await conn.fetchval(
                "INSERT INTO outbox (event_id, topic, key, lane, event_type, value)"
                " VALUES ($1, $2, 'k', 3, 'enterprise.upserted', '{}') RETURNING seq",
                uuid.uuid4(),
                topic,
            )
            await conn.execute(
                "WITH m AS (DELETE FROM outbox WHERE seq = $1 RETURNING *)"
                " INSERT INTO outbox_quarantine (seq, event_id, topic, key, lane, event_type,"
                " value, headers, created_at, error) SELECT seq, event_id, topic, key, lane,"
                " event_type, value, headers, created_at, $2 FROM m",
                seq,
                error,
            )
            return seq
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_lists_and_retries_quarantined_rows(
    service: str,
    fresh_database: str,
    bootstrap_servers: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(migrate_service(fresh_database, f"reelpolicy_{service}.migrations", service))
    for name, value in service_env(
        service=service, database_url=fresh_database, bootstrap_servers=bootstrap_servers
    ).items():
        monkeypatch.setenv(name, value)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # the CLI configures logging
    main: Callable[[list[str]], int] = importlib.import_module(f"reelpolicy_{service}.cli").main

    first = quarantine(fresh_database, topic="t.a", error="MessageSizeTooLargeError: too big")
    second = quarantine(fresh_database, topic="t.b", error="illegal topic name\n'x y'")
    third = quarantine(fresh_database, topic="t.c", error="InvalidTopicError")
    capsys.readouterr()

    assert main(["outbox", "quarantined"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == [
        "seq",
        "event_id",
        "topic",
        "key",
        "type",
        "size",
        "quarantined_at",
        "error",
    ]
    table = [line.split("\t") for line in lines[1:]]
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in table] == [
        (str(seq), topic, "k", "enterprise.upserted", "2")
        for seq, topic in [(first, "t.a"), (second, "t.b"), (third, "t.c")]
    ]
    assert table[0][7] == "MessageSizeTooLargeError: too big"
    assert table[1][7] == "illegal topic name 'x y'"  # one line per row

    assert main(["outbox", "retry"]) == 2  # names no rows
    assert main(["outbox", "retry", str(second), "999999"]) == 1  # 999999 is unknown
    assert main(["outbox", "retry", "--all"]) == 0
    out = capsys.readouterr().out
    assert f"moved 1 rows back to the outbox: {second}" in out
    assert f"moved 2 rows back to the outbox: {first} {third}" in out
    pending = run_sql(fresh_database, "SELECT topic FROM outbox WHERE sent_at IS NULL ORDER BY seq")
    assert [r["topic"] for r in pending] == ["t.b", "t.a", "t.c"]
    assert run_sql(fresh_database, "SELECT count(*) AS n FROM outbox_quarantine")[0]["n"] == 0
    assert main(["outbox", "quarantined"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == []
