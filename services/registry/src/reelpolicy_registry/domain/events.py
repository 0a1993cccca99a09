"""The registry's events: full snapshots keyed by enterprise id (via the outbox).

An enterprise and its productions share the Kafka key (the enterprise id), so their
events stay in order. For the import of a file, where a pydantic object per row would
dominate the cost, :func:`raw_enterprise_event` builds the same JSON by string
assembly and the database builds production events around
:func:`production_upserted_head`; tests check both decode as the typed payload.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import (
    ApiKeyChanged,
    EnterpriseChanged,
    Envelope,
    EventType,
    ProductionChanged,
)
from reelpolicy_contracts.events.envelope import CURRENT_SCHEMA_VERSION
from reelpolicy_contracts.ids import uuid7
from reelpolicy_contracts.subjects import EnterpriseAttributes, ProductionAttributes
from reelpolicy_registry.domain.records import StoredEnterprise, StoredProduction

PRODUCER = "registry"


@dataclass(frozen=True)
class EventHead:
    """What the events of one chunk of import rows share: the envelope's fields but its
    id, key and payload, and the outbox row's topic."""

    topic: str
    event_type: str
    schema_version: int
    occurred_at: str
    producer: str


def enterprise_event(enterprise: StoredEnterprise) -> Envelope:
    payload = EnterpriseChanged(
        enterprise_id=enterprise.id,
        version=enterprise.version,
        deleted=enterprise.deleted,
        attributes=EnterpriseAttributes.model_validate(enterprise.attributes),
    )
    kind = EventType.enterprise_deleted if enterprise.deleted else EventType.enterprise_upserted
    return Envelope(
        type=kind, producer=PRODUCER, key=enterprise.id, payload=payload.model_dump(mode="json")
    )


def production_event(production: StoredProduction) -> Envelope:
    payload = ProductionChanged(
        production_id=production.id,
        enterprise_id=production.enterprise_id,
        version=production.version,
        deleted=production.deleted,
        attributes=ProductionAttributes.model_validate(production.attributes),
    )
    kind = EventType.production_deleted if production.deleted else EventType.production_upserted
    return Envelope(
        type=kind,
        producer=PRODUCER,
        key=production.enterprise_id,
        payload=payload.model_dump(mode="json"),
    )


def api_key_event(
    *,
    key_id: str,
    key_hash: str,
    role: Any,
    enterprise_id: str | None,
    label: str | None,
    revoked: bool,
    version: int | None,
) -> Envelope:
    payload = ApiKeyChanged(
        key_id=key_id,
        key_hash=key_hash,
        role=role,
        enterprise_id=enterprise_id,
        label=label,
        revoked=revoked,
        version=version,
    )
    return Envelope(
        type=EventType.api_key_changed,
        producer=PRODUCER,
        key=enterprise_id or "operator",
        payload=payload.model_dump(mode="json"),
    )


class PreparedEvent:
    """An event whose wire form was assembled already (the import).

    It offers what the outbox writer reads of an :class:`Envelope` (``event_id``,
    ``type``, ``schema_version``, ``key``, :meth:`to_bytes`) without a pydantic
    object per row; :meth:`envelope` gives the validated envelope (tests use it).
    """

    __slots__ = ("_raw", "event_id", "key", "schema_version", "type")

    def __init__(self, event_id: uuid.UUID, kind: EventType, key: str, raw: bytes) -> None:
        self.event_id = event_id
        self.type = kind
        self.key = key
        self.schema_version = CURRENT_SCHEMA_VERSION
        self._raw = raw

    def to_bytes(self) -> bytes:
        return self._raw

    def envelope(self) -> Envelope:
        return Envelope.model_validate_json(self._raw)


def _utc_now_text() -> str:
    """Now as the envelope's ``occurred_at`` serializes (ISO 8601, ``Z``)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _prepared(kind: EventType, key: str, payload_head: str, attributes_json: str) -> Envelope:
    event_id = uuid7()
    now = _utc_now_text()
    raw = (
        f'{{"event_id":"{event_id}","type":"{kind.value}","schema_version":{CURRENT_SCHEMA_VERSION},'
        f'"occurred_at":"{now}","producer":"{PRODUCER}",'
        f'"key":"{key}","payload":{{{payload_head},"attributes":{attributes_json}}}}}'
    )
    return cast(Envelope, PreparedEvent(event_id, kind, key, raw.encode()))


def raw_enterprise_event(enterprise_id: str, version: int, attributes_json: str) -> Envelope:
    """``enterprise.upserted`` from already-validated attributes JSON."""
    head = f'"enterprise_id":"{enterprise_id}","version":{version},"deleted":false'
    return _prepared(EventType.enterprise_upserted, enterprise_id, head, attributes_json)


def production_upserted_head() -> EventHead:
    """The shared fields of the import's ``production.upserted`` events (the
    database builds each envelope around them: ``adapters.import_staging``)."""
    return EventHead(
        topic=topics.REGISTRY,
        event_type=EventType.production_upserted.value,
        schema_version=CURRENT_SCHEMA_VERSION,
        occurred_at=_utc_now_text(),
        producer=PRODUCER,
    )
