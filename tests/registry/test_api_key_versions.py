"""The registry's key events carry increasing versions: issue, revoke and republish."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from reelpolicy_contracts.events import ApiKeyChanged, Envelope
from reelpolicy_registry.cli import main
from service_harness import migrate_service, service_env

pytestmark = pytest.mark.servers


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


def key_events(dsn: str) -> list[ApiKeyChanged]:
    """The ``api_key.changed`` events in the outbox, in the order they were written."""

    async def go() -> list[bytes]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT value FROM outbox WHERE event_type = 'api_key.changed' ORDER BY seq"
            )
            return [bytes(r["value"]) for r in rows]
        finally:
            await conn.close()

    return [
        ApiKeyChanged.model_validate(Envelope.model_validate_json(raw).payload)
        for raw in asyncio.run(go())
    ]


def test_issue_revoke_and_republish_emit_the_keys_versions(env: str) -> None:
    assert (
        main(["api-keys", "create", "--role", "operator", "--key", "rp_a_0123456789abcdefghij"])
        == 0
    )
    assert (
        main(["api-keys", "create", "--role", "operator", "--key", "rp_b_0123456789abcdefghij"])
        == 0
    )
    assert main(["api-keys", "revoke", "a"]) == 0
    assert main(["api-keys", "revoke", "a"]) == 0  # already revoked: nothing new
    assert main(["republish"]) == 0

    events = [(e.key_id, e.revoked, e.version) for e in key_events(env)]
    assert events == [
        ("a", False, 1),
        ("b", False, 1),
        ("a", True, 2),
        ("a", True, 2),  # the republish: each key's current state and version
        ("b", False, 1),
    ]
