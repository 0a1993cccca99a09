"""The harness the service tests share: settings, migrations, API keys, service processes,
reading topics and waiting for a condition (helpers, not fixtures)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def unique_topic(prefix: str = "t") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def eventually(
    predicate: Callable[[], Any | Awaitable[Any]], *, timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """Wait until ``predicate()`` (sync or async) is truthy; return its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


ROOT = Path(__file__).resolve().parent.parent


SECRET_KEY = "test-secret-key-0123456789abcdef"
SEALING_KEYS = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"  # notify's ring: bytes 0..31


async def add_api_key(dsn: str, *, role: str = "operator", enterprise_id: str | None = None) -> str:
    """Issue an API key straight into a service's own ``api_keys`` table; return it."""
    import asyncpg

    from reelpolicy_common.auth import hash_api_key, new_api_key, upsert_api_key

    key_id, key = new_api_key()
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await upsert_api_key(
                conn,
                key_id=key_id,
                key_hash=hash_api_key(key, secret_key=SECRET_KEY),
                role=role,  # type: ignore[arg-type]
                enterprise_id=enterprise_id,
                label="test",
                revoked=False,
            )
    finally:
        await conn.close()
    return key


def service_env(
    *, service: str, database_url: str, bootstrap_servers: str, port: int = 0
) -> dict[str, str]:
    """The environment a service process (or its Settings) reads in tests."""
    return {
        "SERVICE_NAME": service,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "REELPOLICY_SECRET_KEY": SECRET_KEY,
        "NOTIFY_SEALING_KEYS": SEALING_KEYS,
        "HTTP_PORT": str(port or 1),
        "LOG_JSON": "false",
        "CONSUMER_MAX_ATTEMPTS": "3",
        "CONSUMER_RETRY_INITIAL_SECONDS": "0.01",
    }


class RunningApp:
    """An app with its lifespan running (real pool, broker, relay) and an HTTP client."""

    def __init__(self, app: Any, key: str) -> None:
        import httpx

        self.app = app
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {key}"},
        )


async def migrate_service(dsn: str, package: str, namespace: str) -> None:
    from reelpolicy_common.db.migrations import apply_migrations, common_migrations, discover
    from reelpolicy_common.db.pool import connect

    conn = await connect(dsn)
    try:
        await apply_migrations(conn, common_migrations() + discover(package, namespace=namespace))
    finally:
        await conn.close()


def settings_for(
    settings_cls: Any, *, database_url: str, bootstrap_servers: str, **overrides: Any
) -> Any:
    """A service's Settings for a test, pointed at the embedded servers."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap_servers,
        "reelpolicy_secret_key": SECRET_KEY,
        "notify_sealing_keys": SEALING_KEYS,
        "log_json": False,
        "consumer_max_attempts": 3,
        "consumer_retry_initial_seconds": 0.01,
        "shutdown_grace_seconds": 5,
        # A fresh group per app: rejoining a group whose old member is still
        # registered makes the embedded broker wait for that member's session.
        "kafka_consumer_group": f"test-{uuid.uuid4().hex[:8]}",
    }
    values.update(overrides)
    return settings_cls(**values)


async def topic_events(
    bootstrap: str, topic: str, *, where: Callable[[Any], bool], expected: int, within: float = 20
) -> list[Any]:
    """Read ``topic`` from the start until ``expected`` envelopes match ``where``."""
    from aiokafka import AIOKafkaConsumer

    from reelpolicy_contracts.events import Envelope

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[Envelope] = []
    try:
        async with asyncio.timeout(within):
            while len(found) < expected:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        envelope = Envelope.model_validate_json(record.value)
                        if where(envelope):
                            found.append(envelope)
    finally:
        await consumer.stop()
    return found
