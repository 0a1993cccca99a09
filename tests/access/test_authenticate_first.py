"""A request without a valid key is refused before any service reads its body.

Each service's body-taking route is sent a malformed body, and a streamed 64 MiB
one, without a key and with an unknown key: the answer is 401, and the app pulled
(almost) nothing of the body. A body over a route's limit is a 413 before the rest
of it is read. A real registry process answers a 64 MiB unauthenticated import 401
without its memory growing by more than a few MiB.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from in_process_services import InProcessService, four_services
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    free_port,
    wait_for_port,
)
from service_harness import ROOT, migrate_service, service_env

pytestmark = pytest.mark.servers

MiB = 1024 * 1024
BODY_ROUTES = {
    "registry": "/v1/enterprises",
    "ingest": "/v1/policies",
    "rules": "/v1/simulate",
    "notify": "/v1/subscriptions",
}


class CountingApp:
    """ASGI wrapper: how many body bytes the app pulled from ``receive``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


def counting_client(service: InProcessService, headers: dict[str, str]) -> tuple[Any, Any]:
    counting = CountingApp(service.app)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=counting), base_url="http://t", headers=headers
    )
    return counting, client


@pytest.fixture(scope="module")
async def services(
    embedded_postgres: EmbeddedPostgres, embedded_broker: EmbeddedBroker
) -> AsyncIterator[dict[str, InProcessService]]:
    bootstrap = embedded_broker.bootstrap_servers
    async with four_services(embedded_postgres.uri(), bootstrap) as running:
        yield running


@pytest.mark.parametrize("name", sorted(BODY_ROUTES))
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer rp_unknown_key"}], ids=["no key", "unknown key"]
)
async def test_a_malformed_body_without_a_valid_key_is_401_not_422(
    services: dict[str, InProcessService], name: str, headers: dict[str, str]
) -> None:
    counting, client = counting_client(services[name], headers)
    async with client:
        response = await client.post(
            BODY_ROUTES[name], content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 401, response.text
    assert "Authorization" in response.text
    assert counting.read == 0


@pytest.mark.parametrize("name", sorted(BODY_ROUTES))
async def test_a_streamed_64_mib_body_without_a_key_is_401_and_never_read(
    services: dict[str, InProcessService], name: str
) -> None:
    counting, client = counting_client(services[name], {})
    async with client:
        response = await client.post(BODY_ROUTES[name], content=chunks(64 * MiB))
    assert response.status_code == 401, response.text
    assert counting.read == 0


async def test_an_unauthenticated_import_is_401_before_its_body_is_read(
    services: dict[str, InProcessService],
) -> None:
    counting, client = counting_client(services["registry"], {})
    async with client:
        response = await client.post(
            "/v1/import",
            content=chunks(64 * MiB),
            headers={"content-type": "application/x-ndjson"},
        )
    assert response.status_code == 401, response.text
    assert counting.read == 0


@pytest.mark.parametrize("name", sorted(BODY_ROUTES))
async def test_a_body_over_the_limit_is_413_before_the_rest_is_read(
    services: dict[str, InProcessService], name: str
) -> None:
    service = services[name]
    key = service.client.headers["Authorization"]
    counting, client = counting_client(service, {"Authorization": key})
    async with client:
        declared = await client.post(
            BODY_ROUTES[name], content=b"x" * (2 * MiB), headers={"content-type": "text/plain"}
        )
        assert declared.status_code == 413, declared.text
        assert "body" in declared.text
        assert counting.read == 0  # Content-Length said so: nothing was read
        streamed = await client.post(BODY_ROUTES[name], content=chunks(64 * MiB))
    assert streamed.status_code == 413, streamed.text
    assert "body" in streamed.text
    assert counting.read <= 1 * MiB + 64 * 1024  # stopped at the limit (1 MiB at most)


async def test_public_paths_need_no_key(services: dict[str, InProcessService]) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=services["notify"].app), base_url="http://t"
    ) as client:
        for path in ("/openapi.json", "/docs", "/asyncapi.json", "/metrics"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.status_code)


def rss_peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def raw_upload(port: int, path: str, size: int) -> bytes:
    """POST ``size`` bytes with a Content-Length and no key; the status line answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\n"
        f"Content-Length: {size}\r\n\r\n".encode()
    )

    async def upload() -> None:
        block = b'{"kind":"enterprise"}\n' * 3000
        sent = 0
        try:
            while sent < size:
                part = block[: size - sent]
                writer.write(part)
                await writer.drain()
                sent += len(part)
        except ConnectionError:
            pass  # the server answered and closed: the rest is not wanted

    sending = asyncio.create_task(upload())
    try:
        status = await asyncio.wait_for(reader.readline(), timeout=30)
    finally:
        sending.cancel()
        writer.close()
    return status


async def test_a_64_mib_unauthenticated_import_is_401_without_the_process_growing(
    fresh_database: str, bootstrap_servers: str
) -> None:
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topics.REGISTRY])
    await migrate_service(fresh_database, "reelpolicy_registry.migrations", "registry")
    port = free_port()
    env = service_env(
        service="registry",
        database_url=fresh_database,
        bootstrap_servers=bootstrap_servers,
        port=port,
    )
    env = {**os.environ, **env, "LOG_LEVEL": "WARNING", "IMPORT_PROCESSES": "0"}
    cmd = [str(ROOT / ".venv/bin/reelpolicy-registry"), "serve"]
    process = subprocess.Popen(cmd, env=env)  # noqa: ASYNC220
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, timeout=30)
        warm = await raw_upload(port, "/v1/import", 1024)  # first request: lazy imports
        assert warm.startswith(b"HTTP/1.1 401"), warm
        before = rss_peak_kib(process.pid)
        status = await raw_upload(port, "/v1/import", 64 * MiB)
        grown_kib = rss_peak_kib(process.pid) - before
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 20)
    assert status.startswith(b"HTTP/1.1 401"), status
    assert grown_kib < 8 * 1024, f"the registry grew by {grown_kib} KiB"
