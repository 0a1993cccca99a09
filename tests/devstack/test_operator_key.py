"""``make up``'s operator key: a revoked or malformed one is replaced, never a traceback.

Runs the real ``reelpolicy-registry`` commands (as ``make up`` does) on a fresh
registry database of the embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from reelpolicy_devstack.operator_key import register_operator_key
from reelpolicy_devstack.services import run
from service_harness import migrate_service, service_env

pytestmark = pytest.mark.servers

ENV_NAME = "REELPOLICY_OPERATOR_KEY"


def active_operator_keys(dsn: str) -> list[str]:
    async def go() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT key_id FROM api_keys WHERE role = 'operator' AND revoked_at IS NULL"
            )
            return [r["key_id"] for r in rows]
        finally:
            await conn.close()

    return asyncio.run(go())


def key_id(key: str) -> str:
    return key.split("_", 2)[1]


@pytest.fixture
def registry_env(fresh_database: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    asyncio.run(migrate_service(fresh_database, "reelpolicy_registry.migrations", "registry"))
    monkeypatch.delenv(ENV_NAME, raising=False)
    return service_env(
        service="registry", database_url=fresh_database, bootstrap_servers="unused:1"
    )


def test_a_revoked_stored_key_is_replaced_by_a_fresh_one(
    registry_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "operator_key"
    first = "rp_makeup1_" + "s" * 32
    key_file.write_text(first)
    assert register_operator_key(first, key_file=key_file, registry_env=registry_env) == first
    run("registry", "api-keys", "revoke", key_id(first), env=registry_env)  # as an operator may
    capsys.readouterr()

    second = register_operator_key(first, key_file=key_file, registry_env=registry_env)

    assert second != first
    assert second.startswith("rp_")
    assert key_file.read_text().strip() == second
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    out = capsys.readouterr().out
    assert str(key_file) in out
    assert "this key id is taken or revoked" in out
    assert active_operator_keys(registry_env["DATABASE_URL"]) == [key_id(second)]
    # the next start keeps the fresh key
    assert register_operator_key(second, key_file=key_file, registry_env=registry_env) == second


@pytest.mark.parametrize("bad", ["not-a-key", "-rp_dash_looks_like_an_option_xx", "rp_short_x"])
def test_a_malformed_key_in_the_environment_is_named_and_a_fresh_key_used(
    bad: str,
    registry_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(ENV_NAME, bad)
    key_file = tmp_path / "operator_key"

    fresh = register_operator_key(bad, key_file=key_file, registry_env=registry_env)

    assert fresh != bad
    assert fresh.startswith("rp_")
    out = capsys.readouterr().out
    assert f"{ENV_NAME} is not usable" in out
    assert "a key looks like rp_<key_id>_<secret>" in out
    assert key_file.read_text().strip() == fresh
    # while the variable stays wrong, later starts reuse the stored key (no new key each time)
    assert register_operator_key(bad, key_file=key_file, registry_env=registry_env) == fresh
    assert active_operator_keys(registry_env["DATABASE_URL"]) == [key_id(fresh)]
