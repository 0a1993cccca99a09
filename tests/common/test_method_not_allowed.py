"""An undeclared method answers 405 with ``Allow`` listing what the OpenAPI declares
on that path, and a concrete path is never read as a templated one's parameter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from test_problem_details import PARAMETER, PROBLEM, SERVICES, service_app

from reelpolicy_common.http.app import PUBLIC_PATHS
from reelpolicy_common.kafka import ensure_topics
from service_harness import add_api_key, migrate_service

HTTP_METHODS = ("get", "put", "post", "delete", "patch")


@asynccontextmanager
async def running(service: str, dsn: str, bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_topics(bootstrap_servers=bootstrap)
    await migrate_service(dsn, f"reelpolicy_{service}.migrations", service)
    key = await add_api_key(dsn)
    app = service_app(service, database_url=dsn, bootstrap_servers=bootstrap)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url=f"http://{service}", headers=headers
        ) as client:
            yield client


def allow(response: httpx.Response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


@pytest.mark.servers
@pytest.mark.parametrize("service", SERVICES)
async def test_405_allows_every_method_declared_on_the_path(
    service: str, fresh_database: str, bootstrap_servers: str
) -> None:
    async with running(service, fresh_database, bootstrap_servers) as client:
        document = (await client.get("/openapi.json")).json()
        for path, items in document["paths"].items():
            if path in PUBLIC_PATHS:
                continue
            declared = {m.upper() for m in items if m in HTTP_METHODS}
            url = PARAMETER.sub(str(uuid.uuid4()), path)
            # FastAPI, unlike Starlette, answers no HEAD for a GET: nor does Allow
            for method in ("OPTIONS", "HEAD", *sorted({"GET", "POST", "PATCH"} - declared)):
                response = await client.request(method, url)
                assert response.status_code == 405, (method, path, response.text)
                assert method == "HEAD" or response.headers["content-type"] == PROBLEM
                assert allow(response) == declared, (method, path)


@pytest.mark.servers
async def test_a_concrete_path_is_not_a_parameter_of_a_templated_one(
    fresh_database: str, bootstrap_servers: str
) -> None:
    # /v1/deliveries/replay declares only POST; GET /v1/deliveries/{delivery_id}
    # must not take "replay" for an id
    async with running("notify", fresh_database, bootstrap_servers) as client:
        response = await client.get(
            "/v1/deliveries/replay", params={"since": "2026-01-01T00:00:00Z"}
        )
        assert response.status_code == 405, response.text
        assert allow(response) == {"POST"}
        assert (await client.get(f"/v1/deliveries/{uuid.uuid4()}")).status_code == 404
