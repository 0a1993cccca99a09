"""Real servers for the tests: an embedded PostgreSQL and embedded brokers.

Tests that need a server ask for these fixtures; the servers start on first use
(so the fast unit tests never start them). PostgreSQL lives for the session, a
broker for one test module.
Each test that needs a database gets a fresh one (``fresh_database``).

Every test that asks for a server, directly or through another fixture, is marked
``servers`` here, and the tests under ``e2e/`` and ``fuzz/`` get their folder's
marker; ``make test-fast`` deselects them (and the ``chaos`` run). A test that starts
a server by itself carries the ``servers`` marker in its module.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
)

SERVER_FIXTURES = frozenset({"embedded_postgres", "embedded_broker"})
"""The fixtures that start a server; a test whose fixture closure holds one needs it."""
FOLDER_MARKERS = ("e2e", "fuzz")
"""Test folders whose tests all carry the marker of the same name (``chaos/`` also holds
the fast unit tests of the chaos run's oracle, so only its run is marked ``chaos``)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)
        folder = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        if folder in FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, folder))


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
