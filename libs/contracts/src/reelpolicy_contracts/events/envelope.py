"""The envelope every reelpolicy event travels in.

On the wire an event is the JSON of :class:`Envelope` as the Kafka value, the
envelope's ``key`` as the Kafka key, and the W3C trace context (``traceparent``,
``tracestate``) plus ``event-type`` and ``schema-version`` as Kafka headers.
Consumers dispatch on ``type`` and refuse a ``schema_version`` they do not know.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reelpolicy_contracts.ids import uuid7


class EventType(StrEnum):
    policy_published = "policy.published"
    policy_revoked = "policy.revoked"
    enterprise_upserted = "enterprise.upserted"
    enterprise_deleted = "enterprise.deleted"
    production_upserted = "production.upserted"
    production_deleted = "production.deleted"
    eligibility_changed = "eligibility.changed"
    policy_impact = "policy.impact"
    api_key_changed = "api_key.changed"
    snapshot_completed = "snapshot.completed"
    """Only on ``topics.SNAPSHOTS``, which no service consumes (the rules rebuild reads it)."""
    eligibility_state = "eligibility.state"
    """Only on ``topics.ELIGIBILITY_STATE`` (compacted), which no service consumes."""


CURRENT_SCHEMA_VERSION = 1


class Envelope(BaseModel):
    """One event: identity, type, version, time, producer, key and payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(
        default_factory=uuid7, description="Unique (UUIDv7, time-ordered); the dedup key."
    )
    type: EventType
    schema_version: int = Field(default=CURRENT_SCHEMA_VERSION, ge=1)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str = Field(min_length=1, description="The service that produced the event.")
    key: str = Field(min_length=1, description="The aggregate id; also the Kafka key.")
    payload: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def decode_envelope(raw: bytes | str) -> Envelope:
    """Parse and validate an envelope; raises ``pydantic.ValidationError`` when bad."""
    envelope = Envelope.model_validate_json(raw)
    if envelope.schema_version > CURRENT_SCHEMA_VERSION:
        raise ValueError(f"unsupported schema_version {envelope.schema_version}")
    return envelope
