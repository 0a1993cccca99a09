"""Webhook signing secrets at rest: a key ring apart from the API-key secret, rotated as
``deploy/runbook.md`` says (new key first, reseal, drop the old key)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from notify_app import prepare, running_notify
from notify_events import eligibility_event, produce_eligibility
from pydantic import ValidationError
from scripted_receiver import Receiver
from standardwebhooks import Webhook

from reelpolicy_notify.adapters.secret_box import SecretBox, SecretBoxError, new_sealing_key
from reelpolicy_notify.cli import main
from reelpolicy_notify.config import Settings
from reelpolicy_notify.domain.signing import new_secret
from service_harness import SEALING_KEYS, eventually, migrate_service, service_env, settings_for

pytestmark = pytest.mark.servers


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.stop()


async def test_signing_secrets_survive_a_change_of_the_api_key_secret(
    fresh_database: str, bootstrap_servers: str, receiver: Receiver
) -> None:
    await prepare(fresh_database, bootstrap_servers)
    async with running_notify(fresh_database, bootstrap_servers) as notify:
        enterprise = f"ent-{uuid.uuid4().hex[:10]}"
        client = notify.client(await notify.key(enterprise_id=enterprise))
        created = await client.post(
            "/v1/subscriptions",
            json={"channel": "webhook", "events": ["eligibility.changed"], "url": receiver.url},
        )
        assert created.status_code == 201, created.text

    # REELPOLICY_SECRET_KEY (API keys) rotated, the sealing key ring unchanged
    rotated = {"reelpolicy_secret_key": "api-key-secret-after-9876543210"}
    async with running_notify(fresh_database, bootstrap_servers, **rotated):
        await produce_eligibility(bootstrap_servers, eligibility_event(enterprise))
        [request] = await eventually(lambda: receiver.requests, timeout=20)
    body = Webhook(created.json()["secret"]).verify(request.body, request.headers)
    assert body["data"]["enterprise_id"] == enterprise


# --- the rotation procedure ---------------------------------------------------------------


@pytest.fixture
def env(fresh_database: str, bootstrap_servers: str, monkeypatch: pytest.MonkeyPatch) -> str:
    asyncio.run(migrate_service(fresh_database, "reelpolicy_notify.migrations", "notify"))
    variables = service_env(
        service="notify", database_url=fresh_database, bootstrap_servers=bootstrap_servers
    )
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # the CLI configures logging
    return fresh_database


def box_for(monkeypatch: pytest.MonkeyPatch, ring: str, **extra: str) -> SecretBox:
    """Set the ring as an operator would (the environment); the box notify builds from it."""
    monkeypatch.setenv("NOTIFY_SEALING_KEYS", ring)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    return Settings().secret_box()  # type: ignore[call-arg]


def run_sql(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def subscribe(dsn: str, sealed: str, previous: str | None = None) -> uuid.UUID:
    subscription_id = uuid.uuid4()
    run_sql(
        dsn,
        "INSERT INTO subscriptions (id, enterprise_id, channel, url, events, secret_sealed,"
        " previous_secret_sealed) VALUES ($1, 'e1', 'webhook', 'http://127.0.0.1:1/hook',"
        " '{eligibility.changed}', $2, $3)",
        subscription_id,
        sealed,
        previous,
    )
    return subscription_id


def stored(dsn: str) -> dict[uuid.UUID, tuple[str, str | None]]:
    rows = run_sql(dsn, "SELECT id, secret_sealed, previous_secret_sealed FROM subscriptions")
    return {r["id"]: (r["secret_sealed"], r["previous_secret_sealed"]) for r in rows}


def test_rotating_the_sealing_key_as_the_runbook_says(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_a, key_b = new_sealing_key("a"), new_sealing_key("b")
    expected: dict[uuid.UUID, tuple[str, str | None]] = {}

    box_a = box_for(monkeypatch, key_a)
    for previous in (None, new_secret()):
        secret = new_secret()
        sealed_previous = None if previous is None else box_a.seal(previous)
        expected[subscribe(env, box_a.seal(secret), sealed_previous)] = (secret, previous)

    # 1-2. generate B and put it first; old secrets still open, new ones are sealed under B
    box_ba = box_for(monkeypatch, f"{key_b},{key_a}")
    for subscription_id, (sealed, previous_sealed) in stored(env).items():
        opened = box_ba.open(sealed), previous_sealed and box_ba.open(previous_sealed)
        assert opened == expected[subscription_id]
    secret = new_secret()
    sealed_under_b = box_ba.seal(secret)
    assert sealed_under_b.startswith("v2.b.")
    expected[subscribe(env, sealed_under_b)] = (secret, None)

    # 3. reseal: every secret under B, once
    assert main(["secrets", "reseal", "--batch", "2"]) == 0
    assert "examined 3, resealed 2 under key id 'b', already current 1" in capsys.readouterr().out
    assert main(["secrets", "reseal"]) == 0
    assert "resealed 0 under key id 'b', already current 3" in capsys.readouterr().out

    # 4. drop A: the ring [B] alone opens everything
    box_b = box_for(monkeypatch, key_b)
    rows = stored(env)
    assert rows.keys() == expected.keys()
    for subscription_id, (sealed, previous_sealed) in rows.items():
        assert sealed.startswith("v2.b.")
        opened = box_b.open(sealed), previous_sealed and box_b.open(previous_sealed)
        assert opened == expected[subscription_id]
    with pytest.raises(SecretBoxError, match="key id 'a', which is not in the sealing key ring"):
        box_b.open(box_a.seal("whsec_old"))


def test_reseal_reports_a_secret_that_does_not_open_and_reseals_the_rest(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lost = box_for(monkeypatch, new_sealing_key("lost")).seal(new_secret())
    key_a, key_b = new_sealing_key("a"), new_sealing_key("b")
    orphan = subscribe(env, lost)
    fine = subscribe(env, box_for(monkeypatch, key_a).seal("whsec_fine"))
    box_for(monkeypatch, f"{key_b},{key_a}")
    assert main(["secrets", "reseal"]) == 1
    out, err = capsys.readouterr()
    assert "resealed 1 under key id 'b'" in out
    assert "failed 1" in out
    assert f"subscription {orphan}: secret sealed under key id 'lost'" in err
    rows = stored(env)
    assert rows[orphan] == (lost, None)  # left as it was
    assert box_for(monkeypatch, key_b).open(rows[fine][0]) == "whsec_fine"


def seal_v1(master: str, plain: str) -> str:
    """What the notify of before key rings stored (its algorithm, written out again)."""
    enc = hmac.new(master.encode(), b"reelpolicy-notify/enc", hashlib.sha256).digest()
    mac = hmac.new(master.encode(), b"reelpolicy-notify/mac", hashlib.sha256).digest()
    data, nonce = plain.encode(), os.urandom(16)
    stream = b"".join(
        hmac.new(enc, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest()
        for i in range((len(data) + 31) // 32)
    )
    cipher = bytes(a ^ b for a, b in zip(data, stream, strict=False))
    tag = hmac.new(mac, nonce + cipher, hashlib.sha256).digest()
    return "v1." + base64.urlsafe_b64encode(nonce + tag + cipher).decode()


def test_legacy_secrets_open_only_with_the_old_secret_until_resealed(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old_secret = "the-old-reelpolicy-secret-key-0123"
    subscription_id = subscribe(env, seal_v1(old_secret, "whsec_legacy"))
    key = new_sealing_key("k1")
    without = box_for(monkeypatch, key)
    with pytest.raises(SecretBoxError, match="NOTIFY_LEGACY_SECRET_KEY"):
        without.open(stored(env)[subscription_id][0])
    wrong = box_for(monkeypatch, key, NOTIFY_LEGACY_SECRET_KEY="not-the-old-secret-at-all")
    with pytest.raises(SecretBoxError, match="failed authentication"):
        wrong.open(stored(env)[subscription_id][0])

    box_for(monkeypatch, key, NOTIFY_LEGACY_SECRET_KEY=old_secret)
    assert main(["secrets", "reseal"]) == 0
    assert "resealed 1 under key id 'k1'" in capsys.readouterr().out
    monkeypatch.delenv("NOTIFY_LEGACY_SECRET_KEY")
    assert box_for(monkeypatch, key).open(stored(env)[subscription_id][0]) == "whsec_legacy"


# --- settings -----------------------------------------------------------------------------

ZEROS = base64.urlsafe_b64encode(bytes(32)).decode()
SHORT = base64.urlsafe_b64encode(os.urandom(16)).decode()


@pytest.mark.parametrize(
    ("ring", "message"),
    [
        ("", "NOTIFY_SEALING_KEYS must be set"),
        ("changeme", "NOTIFY_SEALING_KEYS must be set"),
        ("no-colon-here", "sealing key 1: an entry is <kid>:<base64url"),
        (f"{SEALING_KEYS},bad kid:{SHORT}", "sealing key 2: an entry is"),
        ("k:not*base64", "sealing key 'k' is not base64url"),
        (f"k:{SHORT}", "sealing key 'k' has 16 bytes; it needs 32"),
        (f"k:{ZEROS}", "sealing key 'k' is a placeholder"),
        (f"{SEALING_KEYS},{SEALING_KEYS}", "sealing key id 'test' appears twice"),
    ],
)
def test_settings_refuse_a_malformed_or_placeholder_ring(ring: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        settings_for(Settings, database_url="x", bootstrap_servers="x", notify_sealing_keys=ring)
    assert SHORT not in str(caught.value)


def test_settings_refuse_a_missing_ring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SEALING_KEYS", raising=False)
    with pytest.raises(ValidationError, match="notify_sealing_keys"):
        Settings(database_url="x", reelpolicy_secret_key="a-real-secret-0123456789")  # type: ignore[call-arg]
