"""Generates ``contracts/`` from the code: ``python -m reelpolicy_contracts.export [DIR]``.

Writes, under ``DIR`` (default ``contracts``):

- ``schemas/<event-type>.v<N>.payload.json``: the JSON Schema (2020-12) of the payload;
- ``schemas/<event-type>.v<N>.envelope.json``: the envelope with that payload typed;
- ``asyncapi.yaml``: the AsyncAPI 3.0 document of the platform (every topic of
  :mod:`reelpolicy_contracts.topics`, its key, one message per event type, headers,
  examples).

``--release`` also copies every schema whose version has no file in ``released/`` yet
there (the first release of a new event type or of a new ``schema_version``); the
compatibility check (:mod:`reelpolicy_contracts.compatibility`) compares against those.

The published schemas are *open* (no ``additionalProperties: false``, though the
services' own models refuse unknown fields): a consumer must ignore fields it does not
know, so adding an optional field keeps the version (see ``docs/events.md``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from reelpolicy_contracts import catalog, topics
from reelpolicy_contracts.events.envelope import EventType

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING_VERSION = "0.5.0"
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


def schema_file(event_type: EventType, version: int, part: str) -> str:
    """``eligibility.changed.v1.envelope.json`` (``part``: ``payload`` or ``envelope``)."""
    return f"{event_type.value}.v{version}.{part}.json"


def _open(node: Any) -> Any:
    """``node`` without ``additionalProperties: false`` anywhere (published schemas are open)."""
    if isinstance(node, dict):
        return {
            k: _open(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)
        }
    if isinstance(node, list):
        return [_open(v) for v in node]
    return node


def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT}
    schema.update(_open(model.model_json_schema()))
    return schema


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for every event type's payload and typed envelope."""
    out: dict[str, dict[str, Any]] = {}
    for entry in catalog.EVENTS:
        version = entry.schema_version
        out[schema_file(entry.type, version, "payload")] = _json_schema(entry.payload)
        out[schema_file(entry.type, version, "envelope")] = _json_schema(
            catalog.typed_envelope(entry.type)
        )
    return out


def _headers(entry: catalog.EventSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event-type", "schema-version"],
        "properties": {
            "event-type": {
                "type": "string",
                "const": entry.type.value,
                "description": "The envelope's `type`: dispatch on it without parsing the value.",
            },
            "schema-version": {
                "type": "string",
                "const": str(entry.schema_version),
                "description": "The envelope's `schema_version`, as text.",
            },
            "traceparent": {
                "type": "string",
                "pattern": TRACEPARENT_PATTERN,
                "description": (
                    "W3C Trace Context: the trace of the request or event that caused this"
                    " one (absent when there was none)."
                ),
            },
            "tracestate": {"type": "string", "description": "W3C Trace Context vendor state."},
            topics.SNAPSHOT_HEADER: {
                "type": "string",
                "format": "uuid",
                "description": (
                    "Only on records written by a republish: the snapshot they belong to"
                    " (counted by its `snapshot.completed` marker)."
                ),
            },
        },
    }


def _dead_letter_message() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "name": "dead-letter",
        "title": "A record a consumer could not process",
        "summary": (
            "The original record (value, key and headers unchanged) plus the error;"
            " replayed to the source topic once fixed."
        ),
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": [
                "dlq-error",
                "dlq-consumer",
                "dlq-attempts",
                "dlq-original-topic",
                "dlq-original-partition",
                "dlq-original-offset",
            ],
            "properties": {
                "dlq-error": {**text, "description": "The exception (type: message)."},
                "dlq-consumer": {**text, "description": "The consumer that gave up."},
                "dlq-attempts": {**text, "description": "How many times it tried."},
                "dlq-original-topic": text,
                "dlq-original-partition": text,
                "dlq-original-offset": text,
            },
        },
        "payload": {
            "description": "The original record's value, unchanged (it may not parse: that"
            " can be why it is here)."
        },
    }


def _tombstone_message(entry: catalog.EventSpec) -> dict[str, Any]:
    return {
        "name": f"{entry.type.value}.tombstone",
        "title": f"{entry.type.value} v{entry.schema_version} tombstone",
        "summary": (
            "The key's value is withdrawn: a null Kafka value (same key format and headers)."
            " Delete the key from your state; compaction removes it later."
        ),
        "headers": _headers(entry),
        "payload": {"type": "null"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": entry.key},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic, message and producing/consuming service."""
    models: list[type[BaseModel]] = [catalog.typed_envelope(e.type) for e in catalog.EVENTS]
    _, defs = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas = _open(defs["$defs"])

    messages: dict[str, Any] = {}
    for entry in catalog.EVENTS:
        wire = catalog.example_envelope(entry.type)
        messages[entry.type.value] = {
            "name": entry.type.value,
            "title": f"{entry.type.value} v{entry.schema_version}",
            "summary": entry.summary,
            "contentType": "application/json",
            "headers": _headers(entry),
            "payload": {
                "$ref": f"#/components/schemas/{catalog.typed_envelope(entry.type).__name__}"
            },
            "correlationId": {"location": "$message.header#/traceparent"},
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": entry.key},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
            "examples": [
                {
                    "name": entry.type.value.replace(".", "-"),
                    "summary": entry.summary,
                    "headers": {
                        "event-type": entry.type.value,
                        "schema-version": str(entry.schema_version),
                        "traceparent": catalog.EXAMPLE_TRACEPARENT,
                    },
                    "payload": wire,
                }
            ],
        }
        if entry.type in catalog.TOMBSTONES:
            messages[f"{entry.type.value}.tombstone"] = _tombstone_message(entry)
    messages["dead-letter"] = _dead_letter_message()

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    described = {t.name: t for t in catalog.TOPICS}
    for topic in topics.ALL_TOPICS:
        source = topic.removesuffix(".dlq")
        if source not in described:
            raise LookupError(f"topic {topic} is not in reelpolicy_contracts.catalog.TOPICS")
        info = described[source]
        dead = topic != source
        config = topics.config(topic)
        channel_messages = (
            {"dead-letter": {"$ref": "#/components/messages/dead-letter"}}
            if dead
            else {
                name: {"$ref": f"#/components/messages/{name}"}
                for e in catalog.events_on(topic)
                for name in (
                    (e.type.value, f"{e.type.value}.tombstone")
                    if e.type in catalog.TOMBSTONES
                    else (e.type.value,)
                )
            }
        )
        if not channel_messages:
            raise LookupError(f"no event type of the catalog travels on {topic}")
        channels[topic] = {
            "address": topic,
            "title": topic,
            "description": (
                f"Dead letters of `{source}`: what its consumers gave up on."
                if dead
                else info.summary
            ),
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": topic,
                    "partitions": topics.partitions(topic),
                    "topicConfiguration": {
                        "cleanup.policy": [config["cleanup.policy"]],
                        "retention.ms": int(config["retention.ms"]),
                        **(
                            {"delete.retention.ms": int(config["delete.retention.ms"])}
                            if "delete.retention.ms" in config
                            else {}
                        ),
                    },
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        refs = [{"$ref": f"#/channels/{topic}/messages/{name}"} for name in channel_messages]
        senders = info.consumers if dead else info.producers
        receivers = () if dead else info.consumers
        for service in senders:
            operations[f"{service}.send.{topic}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{topic}"},
                "title": f"{service} publishes to {topic}",
                "messages": refs,
            }
        for service in receivers:
            operations[f"{service}.receive.{topic}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{topic}"},
                "title": f"{service} consumes {topic}",
                "messages": refs,
            }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "reelpolicy events",
            "version": "1.0.0",
            "description": (
                "Every topic of the reelpolicy platform, generated from"
                " `libs/contracts` (`make contracts`). The Kafka value is the JSON envelope"
                " (identity, type, schema_version, time, producer, key, typed payload); the"
                " Kafka key is the envelope's `key`. Consumers dedupe by `event_id`, dispatch"
                " on `type`, refuse a `schema_version` they do not know, and ignore fields"
                " they do not know. Evolution rules: docs/events.md."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "development": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The embedded broker of `make up` (KAFKA_BOOTSTRAP_SERVERS).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _json_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """Relative path -> file content, for everything ``contracts/`` holds but ``released/``."""
    files = {f"schemas/{name}": _json_text(s) for name, s in json_schemas().items()}
    files["asyncapi.yaml"] = (
        "# Generated by `make contracts` (python -m reelpolicy_contracts.export): do not edit.\n"
        + yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=100)
    )
    return files


def write(directory: Path, *, release: bool = False) -> list[Path]:
    """Writes :func:`render` under ``directory`` (removing stale schema files); with
    ``release``, copies schemas of versions not released yet into ``released/``."""
    files = render()
    schemas = directory / "schemas"
    if schemas.exists():
        shutil.rmtree(schemas)
    schemas.mkdir(parents=True)
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if release:
        released = directory / "released"
        released.mkdir(exist_ok=True)
        for name, text in files.items():
            target = released / Path(name).name
            if name.startswith("schemas/") and not target.exists():
                target.write_text(text, encoding="utf-8")
                written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", nargs="?", default="contracts", type=Path)
    parser.add_argument(
        "--release",
        action="store_true",
        help="also copy schemas of versions not released yet into DIR/released/",
    )
    args = parser.parse_args(argv)
    for path in write(args.directory, release=args.release):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
