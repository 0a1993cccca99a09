"""Every error is RFC 9457 problem details, and the OpenAPI documents say so."""

from __future__ import annotations

import importlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI

from reelpolicy_common.http.app import PUBLIC_PATHS
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from service_harness import add_api_key, migrate_service, settings_for

SERVICES = ("registry", "ingest", "rules", "notify")
PROBLEM = "application/problem+json"
PARAMETER = re.compile(r"\{[^}]+\}")


def service_app(service: str, **settings: Any) -> FastAPI:
    main = importlib.import_module(f"reelpolicy_{service}.main")
    config = importlib.import_module(f"reelpolicy_{service}.config")
    defaults = {"database_url": "postgresql://nobody@/nothing?host=/nonexistent"}
    defaults["bootstrap_servers"] = "127.0.0.1:9"
    app: FastAPI = main.create_app(settings_for(config.Settings, **(defaults | settings)))
    return app


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, items in document["paths"].items():
        if path in PUBLIC_PATHS:
            continue
        for method, operation in items.items():
            yield path, method, operation


def declared_schema(document: dict[str, Any], path: str, method: str, status: int) -> Any:
    """The schema ``document`` declares for that answer, resolvable on its own."""
    response = document["paths"][path][method]["responses"][str(status)]
    schema = response["content"][PROBLEM]["schema"]
    return {**schema, "components": document["components"]}


def assert_answers_as_declared(
    document: dict[str, Any], path: str, method: str, response: httpx.Response
) -> dict[str, Any]:
    assert response.headers["content-type"] == PROBLEM, response.text
    body: dict[str, Any] = response.json()
    schema = declared_schema(document, path, method, response.status_code)
    jsonschema.Draft202012Validator(schema).validate(body)
    assert body["status"] == response.status_code
    return body


@pytest.mark.parametrize("service", SERVICES)
def test_every_declared_error_uses_the_problem_schema(service: str) -> None:
    document = service_app(service).openapi()
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) >= {"type", "title", "status", "detail", "errors"}
    assert "HTTPValidationError" not in json.dumps(document)
    for path, method, operation in operations(document):
        responses = operation["responses"]
        errors = {s: r for s, r in responses.items() if int(s) >= 400}
        for status, response in errors.items():
            where = (method, path, status)
            assert list(response["content"]) == [PROBLEM], where
            assert response["content"][PROBLEM]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }, where
            assert response["description"], where
        if operation.get("security"):
            assert {"401", "503"} <= set(errors), (method, path)
            assert "Retry-After" in errors["503"]["headers"], (method, path)
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in errors, (method, path)


@pytest.mark.parametrize("service", SERVICES)
def test_examples_are_problems_of_their_status(service: str) -> None:
    document = service_app(service).openapi()
    for path, method, operation in operations(document):
        for media_type, body in operation.get("requestBody", {}).get("content", {}).items():
            examples = [e["value"] for e in body.get("examples", {}).values()]
            if "example" in body:
                examples.append(body["example"])
            if examples and "schema" in body:
                schema = {**body["schema"], "components": document["components"]}
                validator = jsonschema.Draft202012Validator(schema)
                for example in examples:
                    assert not list(validator.iter_errors(example)), (method, path, media_type)
        for status, response in operation["responses"].items():
            example = response.get("content", {}).get(PROBLEM, {}).get("example")
            if example is not None:
                schema = declared_schema(document, path, method, int(status))
                jsonschema.Draft202012Validator(schema).validate(example)
                assert example["status"] == int(status), (method, path)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_request_without_a_key_is_the_declared_401(service: str) -> None:
    app = service_app(service)
    document = app.openapi()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for path, method, operation in operations(document):
            if not operation.get("security"):
                continue
            url = PARAMETER.sub(str(uuid.uuid4()).replace("-", "")[:12], path)
            response = await client.request(method, url)
            assert response.status_code == 401, (method, path, response.text)
            body = assert_answers_as_declared(document, path, method, response)
            assert [e["field"] for e in body["errors"]] == ["Authorization"]


@asynccontextmanager
async def running_registry(dsn: str, bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_topics(bootstrap_servers=bootstrap, names=[topics.REGISTRY])
    await migrate_service(dsn, "reelpolicy_registry.migrations", "registry")
    key = await add_api_key(dsn)
    app = service_app(
        "registry", database_url=dsn, bootstrap_servers=bootstrap, max_body_bytes=4096
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://registry", headers=headers
        ) as client:
            yield client


@pytest.mark.servers
async def test_real_errors_match_the_schema_declared_for_their_status(
    fresh_database: str, bootstrap_servers: str
) -> None:
    async with running_registry(fresh_database, bootstrap_servers) as client:
        document = (await client.get("/openapi.json")).json()

        invalid = await client.post("/v1/enterprises", json={"name": "x", "tags": "not a list"})
        assert invalid.status_code == 422
        body = assert_answers_as_declared(document, "/v1/enterprises", "post", invalid)
        assert "tags" in {e["field"] for e in body["errors"]}

        unknown_key = await client.get(
            "/v1/enterprises", headers={"Authorization": "Bearer rp_000000000000_nothing"}
        )
        assert unknown_key.status_code == 401
        assert_answers_as_declared(document, "/v1/enterprises", "get", unknown_key)

        missing = await client.get(f"/v1/enterprises/{uuid.uuid4()}")
        assert missing.status_code == 404
        body = assert_answers_as_declared(
            document, "/v1/enterprises/{enterprise_id}", "get", missing
        )
        assert [e["field"] for e in body["errors"]] == ["id"]

        too_large = await client.post("/v1/enterprises", json={"name": "x" * 5000})
        assert too_large.status_code == 413
        body = assert_answers_as_declared(document, "/v1/enterprises", "post", too_large)
        assert [e["field"] for e in body["errors"]] == ["body"]

        no_route = await client.get("/v1/nothing-here")
        assert no_route.status_code == 404
        assert no_route.headers["content-type"] == PROBLEM
        assert no_route.json()["title"] == "Not Found"


def test_the_submit_example_is_a_valid_policy() -> None:
    from reelpolicy_policy import parse_policy

    document = service_app("ingest").openapi()
    body = document["paths"]["/v1/policies"]["post"]["requestBody"]["content"]
    parse_policy(body["application/json"]["example"])
