"""Each service's ``/asyncapi`` describes its published messages with the typed
envelopes of the catalog (not ``Envelope`` with a free ``payload`` dict), and the AsyncAPI
parser accepts the document each service serves."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from contracts_files import asyncapi_validator
from faststream.specification import AsyncAPI

from reelpolicy_contracts import catalog, topics
from service_harness import settings_for


def service_broker(service: str) -> Any:
    if service == "ingest":
        from reelpolicy_ingest.bootstrap import bootstrap as ingest
        from reelpolicy_ingest.config import Settings as IngestSettings

        return ingest(settings(IngestSettings)).runtime.broker
    if service == "registry":
        from reelpolicy_registry.bootstrap import bootstrap as registry
        from reelpolicy_registry.config import Settings as RegistrySettings

        return registry(settings(RegistrySettings)).runtime.broker
    from reelpolicy_rules.bootstrap import bootstrap as rules
    from reelpolicy_rules.config import Settings as RulesSettings

    return rules(settings(RulesSettings)).runtime.broker


def settings(cls: Any) -> Any:
    return settings_for(
        cls, database_url="postgresql://unused/unused", bootstrap_servers="unused:1"
    )


def document(service: str) -> dict[str, Any]:
    spec = AsyncAPI(service_broker(service), title=service).to_specification()
    jsonable: dict[str, Any] = spec.to_jsonable()
    return jsonable


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("%20", " ")]
    assert isinstance(node, dict)
    return node


PUBLISHED = {"ingest": topics.POLICY, "registry": topics.REGISTRY, "rules": topics.ELIGIBILITY}


@pytest.mark.parametrize("service", sorted(PUBLISHED))
def test_the_published_messages_are_typed(service: str) -> None:
    doc = document(service)
    topic = PUBLISHED[service]
    (channel,) = [c for c in doc["channels"].values() if c["address"] == topic]
    payloads = []
    for ref in channel["messages"].values():
        message = resolve(doc, ref["$ref"])
        payloads.append(resolve(doc, message["payload"]["$ref"]))
    (payload,) = payloads
    variants = [resolve(doc, v["$ref"]) for v in payload.get("oneOf", [payload])]
    expected = {e.type.value: e.name for e in catalog.events_on(topic)}
    typed = {}
    for variant in variants:
        event_type = variant["properties"]["type"].get("const")
        payload_ref = variant["properties"]["payload"].get("$ref")
        assert event_type, f"{service}: a message of {topic} has no fixed type: {variant}"
        assert payload_ref, f"{service}: {event_type}'s payload is untyped: {variant}"
        typed[event_type] = payload_ref.rsplit("/", 1)[-1]
        body = doc["components"]["schemas"][typed[event_type]]
        assert body["properties"], body  # the payload's fields, not a free dict
    assert typed == expected
    assert "Envelope" not in doc["components"]["schemas"]


@pytest.mark.parametrize("service", sorted(PUBLISHED))
def test_the_asyncapi_parser_accepts_the_services_document(service: str, tmp_path: Path) -> None:
    path = tmp_path / f"{service}.json"
    path.write_text(json.dumps(document(service)), encoding="utf-8")
    done = subprocess.run(
        [*asyncapi_validator(), str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
