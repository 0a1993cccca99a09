"""The registry's commands against a real database: keys, import, republish."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import asyncpg
import pytest
from registry_helpers import new_enterprise

from reelpolicy_datagen.cli import main as datagen
from reelpolicy_registry.cli import main
from service_harness import migrate_service, service_env

pytestmark = pytest.mark.servers


def count(dsn: str, sql: str, *args: object) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


async def only_enterprise_id(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SELECT id FROM enterprises"))
    finally:
        await conn.close()


@pytest.fixture
def env(fresh_database: str, bootstrap_servers: str, monkeypatch: pytest.MonkeyPatch) -> str:
    asyncio.run(migrate_service(fresh_database, "reelpolicy_registry.migrations", "registry"))
    variables = service_env(
        service="registry", database_url=fresh_database, bootstrap_servers=bootstrap_servers
    )
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # the CLI configures logging
    return fresh_database


def test_commands(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = "rp_ops_explicit_key_0123456789"
    assert main(["api-keys", "create", "--role", "operator", "--key", key]) == 0
    assert main(["api-keys", "create", "--role", "operator", "--key", key]) == 0  # idempotent
    assert capsys.readouterr().out.split() == [key, key]
    assert count(env, "SELECT count(*) FROM api_keys") == 1
    assert count(env, "SELECT count(*) FROM outbox WHERE event_type = 'api_key.changed'") == 1
    assert main(["api-keys", "create", "--role", "company"]) == 1  # needs --enterprise

    data = tmp_path / "data.jsonl"
    assert datagen(["--enterprises", "20", "--productions", "100", "--out", str(data)]) == 0
    assert main(["import", str(data)]) == 0
    assert main(["import", str(data)]) == 0
    assert "accepted 0, unchanged 120" in capsys.readouterr().out
    assert count(env, "SELECT count(*) FROM outbox") == 121

    assert main(["api-keys", "revoke", "ops"]) == 0
    assert main(["api-keys", "revoke", "nope"]) == 1
    assert main(["republish"]) == 0
    # 121 snapshots (one key, 20 enterprises, 100 productions), then their marker
    assert count(env, "SELECT count(*) FROM outbox") == 122 + 121 + 1
    tagged = "SELECT count(DISTINCT headers->>'reelpolicy-snapshot') FROM outbox"
    assert count(env, tagged + " WHERE topic = 'reelpolicy.registry.v1' AND seq > 122") == 1
    assert count(env, tagged.replace("DISTINCT ", "") + " WHERE seq > 122") == 121
    marker = (
        "SELECT (convert_from(value, 'UTF8')::jsonb #>> '{payload,records}')::int FROM outbox"
        " WHERE topic = 'reelpolicy.snapshots.v1' AND event_type = 'snapshot.completed'"
    )
    assert count(env, marker) == 121


def test_import_reads_rows_of_files_as_written(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON Lines row ends at LF only (a CR between tokens is JSON whitespace); a quoted
    CSV cell keeps its line breaks; errors name the line a row starts on."""
    enterprise = new_enterprise()
    code = enterprise["credit_code"]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_bytes(
        (
            json.dumps({"type": "enterprise", **enterprise})
            + "\n"
            + '{"type": "production",\r"enterprise_credit_code": "'
            + code
            + '",'
            + '\r"external_id": "j1", "title": "a\u2028b"}\r\n'
            + '{"type": "production", "title": "no enterprise"}\n'
        ).encode()
    )
    assert main(["import", str(jsonl)]) == 1
    out, err = capsys.readouterr()
    assert "accepted 2, unchanged 0, rejected 1" in out
    assert re.findall(r"row \d+: [^\r\n]*", err) == ["row 3: enterprise_id: no such enterprise"]

    csv_file = tmp_path / "rows.csv"
    csv_file.write_bytes(
        (
            "type,enterprise_credit_code,external_id,title\r\n"
            f'production,{code},c1,"line one\r\nline two"\r\n'
            "production,nope,c2,x\r\n"
        ).encode()
    )
    assert main(["import", str(csv_file)]) == 1
    out, err = capsys.readouterr()
    assert "accepted 1, unchanged 0, rejected 1" in out
    assert re.findall(r"row \d+: [^\r\n]*", err) == [
        "row 4: enterprise_credit_code: no such enterprise"
    ]
    titles = "SELECT count(*) FROM productions WHERE attributes->>'title' = $1"
    assert count(env, titles, "a\u2028b") == 1
    assert count(env, titles, "line one\r\nline two") == 1


def test_portal_link_prints_a_one_time_sign_in_url(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "one.jsonl"
    rows.write_text(json.dumps({"type": "enterprise", **new_enterprise()}) + "\n")
    assert main(["import", str(rows)]) == 0
    enterprise_id = asyncio.run(only_enterprise_id(env))
    capsys.readouterr()
    assert main(["portal-link", "--enterprise", enterprise_id]) == 0
    url = capsys.readouterr().out.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:8005/sign-in/link\?token=[A-Za-z0-9_-]{43}", url)
    assert (
        count(
            env, "SELECT count(*) FROM portal_links WHERE enterprise_id = $1::uuid", enterprise_id
        )
        == 1
    )
    unknown = "0193a4c2-7d1e-7c3a-9f10-5b2e8d4c6a01"
    assert main(["portal-link", "--enterprise", unknown]) == 1
    assert f"enterprise {unknown} not found" in capsys.readouterr().err
