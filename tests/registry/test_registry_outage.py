"""The API while its database is away: 503 with Retry-After, never a 500, and back after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from registry_helpers import new_enterprise, running_registry

from tcp_fault_proxy import FaultProxy, postgres_proxy, through

pytestmark = pytest.mark.servers


@pytest.fixture
def database_proxy(fresh_database: str) -> Iterator[FaultProxy]:
    proxy = postgres_proxy(fresh_database)
    yield proxy
    proxy.stop()


async def test_a_write_while_the_database_is_down_answers_503_and_stores_nothing(
    fresh_database: str, database_proxy: FaultProxy, bootstrap_servers: str
) -> None:
    async with running_registry(
        through(database_proxy, fresh_database),
        bootstrap_servers,
        database_connect_timeout_seconds=1,
    ) as registry:
        database_proxy.refuse()
        database_proxy.cut()
        response = await registry.client.post("/v1/enterprises", json=new_enterprise())
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert "unavailable" in response.json()["detail"]
        assert response.json()["status"] == 503

        database_proxy.heal()
        again = await registry.client.post("/v1/enterprises", json=new_enterprise())
        assert again.status_code == 201, again.text
        assert await registry.fetchval("SELECT count(*) FROM enterprises") == 1
