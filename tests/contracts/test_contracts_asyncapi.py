"""contracts/asyncapi.yaml: valid for the AsyncAPI project's own parser, and complete
(every topic, every event type with its schema, key, headers and a valid example)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from contracts_files import ASYNCAPI, CONTRACTS, asyncapi_validator, load_json

from reelpolicy_contracts import catalog, topics
from reelpolicy_contracts.events import EventType
from reelpolicy_contracts.export import schema_file


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    return loaded


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*asyncapi_validator(), str(path)], capture_output=True, text=True, timeout=300
    )


def test_the_asyncapi_parser_accepts_the_document() -> None:
    done = validate(ASYNCAPI)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "AsyncAPI 3.0.0" in done.stdout, done.stdout


def test_the_asyncapi_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    """The check can fail: a message whose payload points nowhere is refused."""
    broken = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    message = broken["components"]["messages"]["eligibility.changed"]
    message["payload"] = {"$ref": "#/components/schemas/NoSuchSchema"}
    path = tmp_path / "asyncapi.yaml"
    path.write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
    done = validate(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error" in done.stdout, done.stdout


def test_every_topic_is_a_channel_with_its_partitions(document: dict[str, Any]) -> None:
    channels = document["channels"]
    assert set(channels) == set(topics.ALL_TOPICS)
    for topic in topics.ALL_TOPICS:
        kafka = channels[topic]["bindings"]["kafka"]
        assert channels[topic]["address"] == topic
        assert kafka["partitions"] == topics.partitions(topic)
        assert kafka["topicConfiguration"]["cleanup.policy"] == [
            topics.config(topic)["cleanup.policy"]
        ]


def test_every_event_type_is_a_message_on_its_topic(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    for event_type in EventType:
        entry = catalog.spec(event_type)
        message = messages[event_type.value]
        channel = document["channels"][entry.topic]
        assert event_type.value in channel["messages"], (event_type, entry.topic)
        assert message["bindings"]["kafka"]["key"]["description"] == entry.key
        headers = message["headers"]["properties"]
        assert headers["event-type"]["const"] == event_type.value
        assert headers["schema-version"]["const"] == str(entry.schema_version)
        assert {"traceparent", "tracestate"} <= set(headers)
        payload = message["payload"]["$ref"].rsplit("/", 1)[-1]
        envelope = document["components"]["schemas"][payload]
        assert envelope["properties"]["payload"]["$ref"].endswith(f"/{entry.name}")


def test_each_example_validates_against_its_published_schemas(document: dict[str, Any]) -> None:
    for event_type in EventType:
        version = catalog.spec(event_type).schema_version
        envelope_schema = load_json(
            CONTRACTS / "schemas" / schema_file(event_type, version, "envelope")
        )
        payload_schema = load_json(
            CONTRACTS / "schemas" / schema_file(event_type, version, "payload")
        )
        (example,) = document["components"]["messages"][event_type.value]["examples"]
        jsonschema.validate(example["payload"], envelope_schema)
        jsonschema.validate(example["payload"]["payload"], payload_schema)
        jsonschema.validate(
            example["headers"], document["components"]["messages"][event_type.value]["headers"]
        )
        # the envelope's payload is typed: a free dict without the payload's fields fails
        wrong = {**example["payload"], "payload": {"note": "not this event's payload"}}
        with pytest.raises(jsonschema.ValidationError, match="is a required property"):
            jsonschema.validate(wrong, envelope_schema)
