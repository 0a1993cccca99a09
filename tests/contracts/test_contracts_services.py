"""Each service's ``/asyncapi`` describes the messages it publishes and the messages its
subscribers read with the typed envelopes of the catalog (not ``Envelope`` with a free
``payload`` dict, nor FastStream's untyped batch body), and the AsyncAPI parser accepts
the document each service serves."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from contracts_files import asyncapi_validator

from reelpolicy_contracts import catalog, topics
from service_harness import settings_for

SERVICES = ("ingest", "notify", "registry", "rules")


_documents: dict[str, dict[str, Any]] = {}


async def document(service: str) -> dict[str, Any]:
    """The service's ``/asyncapi.json``, from its app as ``main.create_app`` composes it
    (consumers included; nothing is started: the document needs no database or broker)."""
    if service not in _documents:
        main = importlib.import_module(f"reelpolicy_{service}.main")
        config = importlib.import_module(f"reelpolicy_{service}.config")
        settings = settings_for(
            config.Settings,
            database_url="postgresql://unused/unused",
            bootstrap_servers="unused:1",
        )
        transport = httpx.ASGITransport(app=main.create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            response = await client.get("/asyncapi.json")
        assert response.status_code == 200, response.text
        _documents[service] = response.json()
    return _documents[service]


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    """The node ``ref`` points to, following references to references."""
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[unquote(part)]
    assert isinstance(node, dict)
    return resolve(doc, node["$ref"]) if "$ref" in node else node


def typed_messages(doc: dict[str, Any], action: str) -> dict[str, dict[str, str]]:
    """Per topic, the messages the ``send`` (publisher) or ``receive`` (subscriber)
    operations document on it: event type -> payload schema name; an untyped message
    fails the test."""
    found: dict[str, dict[str, str]] = {}
    for operation in doc["operations"].values():
        if operation["action"] != action:
            continue
        topic = resolve(doc, operation["channel"]["$ref"])["address"]
        for ref in operation["messages"]:
            payload = resolve(doc, resolve(doc, ref["$ref"])["payload"]["$ref"])
            for variant_ref in payload.get("oneOf", [payload]):
                variant = (
                    resolve(doc, variant_ref["$ref"]) if "$ref" in variant_ref else variant_ref
                )
                fields = variant.get("properties", {})
                event_type = fields.get("type", {}).get("const")
                payload_ref = fields.get("payload", {}).get("$ref")
                assert event_type, f"a {action} message of {topic} has no fixed type: {variant}"
                assert payload_ref, f"{event_type}'s payload on {topic} is untyped: {variant}"
                name = payload_ref.rsplit("/", 1)[-1]
                assert doc["components"]["schemas"][name]["properties"]  # not a free dict
                found.setdefault(topic, {})[event_type] = name
    return found


def catalog_messages(topic: str) -> dict[str, str]:
    return {e.type.value: e.name for e in catalog.events_on(topic)}


PUBLISHED = {"ingest": topics.POLICY, "registry": topics.REGISTRY, "rules": topics.ELIGIBILITY}


@pytest.mark.parametrize("service", sorted(PUBLISHED))
async def test_the_published_messages_are_typed(service: str) -> None:
    doc = await document(service)
    topic = PUBLISHED[service]
    assert typed_messages(doc, "send") == {topic: catalog_messages(topic)}
    assert "Envelope" not in doc["components"]["schemas"]


@pytest.mark.parametrize("service", SERVICES)
async def test_the_consumed_messages_are_typed(service: str) -> None:
    """Each topic the catalog says the service consumes has a subscriber documenting at
    least that topic's event types, and nothing beyond the topics the service reads (a
    subscriber of several topics shows their union on each, see
    ``reelpolicy_common.consumer.documented``)."""
    consumed = [t.name for t in catalog.TOPICS if service in t.consumers]
    readable = {k: v for t in consumed for k, v in catalog_messages(t).items()}
    doc = await document(service)
    documented = typed_messages(doc, "receive")
    assert sorted(documented) == sorted(consumed)
    for topic, messages in documented.items():
        assert catalog_messages(topic).items() <= messages.items(), topic
        assert messages.items() <= readable.items(), topic
    assert "Envelope" not in doc["components"]["schemas"]


@pytest.mark.parametrize("service", SERVICES)
async def test_the_asyncapi_parser_accepts_the_services_document(
    service: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{service}.json"
    path.write_text(json.dumps(await document(service)), encoding="utf-8")
    done = await asyncio.to_thread(
        subprocess.run,
        [*asyncapi_validator(), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
