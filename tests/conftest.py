"""Real servers for the tests: an embedded PostgreSQL and embedded brokers.

Tests that need a server ask for these fixtures; the servers start on first use
(so the fast unit tests never start them). PostgreSQL lives for the session, a
broker for one test module.
Each test that needs a database gets a fresh one (``fresh_database``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
)


@pytest.fixture(scope="session")
def embedded_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres.start(tmp_path_factory.mktemp("pg") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker per test module: it starts in milliseconds, and a fresh one keeps a
    module's consumers (which read the fixed topics from the start) clear of the
    events other modules left behind."""
    broker = EmbeddedBroker.start(log_file=tmp_path_factory.mktemp("broker") / "tansu.log")
    yield broker
    broker.stop()


@pytest.fixture
def bootstrap_servers(embedded_broker: EmbeddedBroker) -> str:
    return embedded_broker.bootstrap_servers


@pytest.fixture
async def fresh_database(embedded_postgres: EmbeddedPostgres) -> AsyncIterator[str]:
    """A new, empty database on the embedded server; its DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    await ensure_database(embedded_postgres.uri(), name)
    yield database_uri(embedded_postgres.uri(), name)
