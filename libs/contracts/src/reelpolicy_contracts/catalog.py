"""The event catalog: which event type travels on which topic, keyed by what, as what.

One :class:`EventSpec` per event type (its payload model, topic, key, producer and a
validated example), one :class:`TopicSpec` per topic. ``contracts/`` at the repository
root is generated from this module and the models it names
(``python -m reelpolicy_contracts.export``, ``make contracts``): the JSON Schemas of
every event type's payload and envelope, and the AsyncAPI document of the platform.

:func:`typed_envelope` is the envelope with its payload typed: the model the schemas
and each service's ``/asyncapi`` page describe (on the wire it is exactly
:class:`~reelpolicy_contracts.events.envelope.Envelope`).
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Literal, Union, cast

from pydantic import BaseModel, Field, create_model

from reelpolicy_contracts import topics
from reelpolicy_contracts.events.envelope import CURRENT_SCHEMA_VERSION, Envelope, EventType
from reelpolicy_contracts.events.payloads import (
    ApiKeyChanged,
    EligibilityChanged,
    EligibilityState,
    EnterpriseChanged,
    PolicyImpact,
    PolicyPublished,
    PolicyRevoked,
    ProductionChanged,
    SnapshotCompleted,
)
from reelpolicy_contracts.subjects import (
    EnterpriseAttributes,
    EnterpriseKind,
    Platform,
    ProductionAttributes,
    Theme,
)

_POLICY_KEY = "The policy id."
_ENTERPRISE_KEY = "The enterprise id (an enterprise and its productions stay in order)."


@dataclass(frozen=True)
class EventSpec:
    """One event type as it travels: payload model, topic, Kafka key, producer, example."""

    type: EventType
    payload: builtins.type[BaseModel]
    topic: str
    key: str
    """What the Kafka key (and the envelope's ``key``) is."""
    producer: str
    summary: str
    example: BaseModel
    example_key: str
    schema_version: int = CURRENT_SCHEMA_VERSION

    @property
    def name(self) -> str:
        """The payload model's name: ``EligibilityChanged``."""
        return self.payload.__name__


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, what it carries and who reads it."""

    name: str
    summary: str
    producers: tuple[str, ...]
    """The services that publish to it (through their outbox)."""
    consumers: tuple[str, ...]
    """The services that consume it (their consumer groups: ``reelpolicy-<service>``...);
    they also write its dead-letter topic."""


_EXAMPLE_ENTERPRISE = EnterpriseAttributes(
    name="上海示例影视文化有限公司",
    credit_code="91310110MA1G000001",
    region_code="310110",
    established_on=date(2021, 3, 1),
    employees=42,
    kind=EnterpriseKind.production_company,
)
_EXAMPLE_PRODUCTION = ProductionAttributes(
    enterprise_id="0193a6f0-0000-7000-8000-000000000001",
    title="黄河之上",
    region_code="310110",
    episodes=80,
    minutes_per_episode=2.5,
    budget_cny=1_200_000,
    release_date=date(2026, 9, 1),
    platforms=[Platform.douyin, Platform.hongguo],
    themes=[Theme.yellow_river_culture],
)
_ENTERPRISE_ID = "0193a6f0-0000-7000-8000-000000000001"
_PRODUCTION_ID = "0193a6f0-0000-7000-8000-000000000002"
_POLICY_ID = "shanghai-yangpu-microdrama-2025"

EVENTS: tuple[EventSpec, ...] = (
    EventSpec(
        type=EventType.policy_published,
        payload=PolicyPublished,
        topic=topics.POLICY,
        key=_POLICY_KEY,
        producer="ingest",
        summary="A policy document's new version, exactly as ingest stored it.",
        example=PolicyPublished(
            policy_id=_POLICY_ID,
            version=2,
            previous_version=1,
            document={"id": _POLICY_ID, "title": "杨浦区微短剧扶持", "rules": []},
        ),
        example_key=_POLICY_ID,
    ),
    EventSpec(
        type=EventType.policy_revoked,
        payload=PolicyRevoked,
        topic=topics.POLICY,
        key=_POLICY_KEY,
        producer="ingest",
        summary="A policy was revoked: no subject is evaluated against it any more.",
        example=PolicyRevoked(policy_id=_POLICY_ID, version=2, reason="superseded"),
        example_key=_POLICY_ID,
    ),
    EventSpec(
        type=EventType.enterprise_upserted,
        payload=EnterpriseChanged,
        topic=topics.REGISTRY,
        key=_ENTERPRISE_KEY,
        producer="registry",
        summary="An enterprise was created or changed: its full current state.",
        example=EnterpriseChanged(
            enterprise_id=_ENTERPRISE_ID, version=3, attributes=_EXAMPLE_ENTERPRISE
        ),
        example_key=_ENTERPRISE_ID,
    ),
    EventSpec(
        type=EventType.enterprise_deleted,
        payload=EnterpriseChanged,
        topic=topics.REGISTRY,
        key=_ENTERPRISE_KEY,
        producer="registry",
        summary="An enterprise was (soft) deleted: its last state, with deleted = true.",
        example=EnterpriseChanged(
            enterprise_id=_ENTERPRISE_ID, version=4, deleted=True, attributes=_EXAMPLE_ENTERPRISE
        ),
        example_key=_ENTERPRISE_ID,
    ),
    EventSpec(
        type=EventType.production_upserted,
        payload=ProductionChanged,
        topic=topics.REGISTRY,
        key=_ENTERPRISE_KEY,
        producer="registry",
        summary="A production was created or changed: its full current state.",
        example=ProductionChanged(
            production_id=_PRODUCTION_ID,
            enterprise_id=_ENTERPRISE_ID,
            version=1,
            attributes=_EXAMPLE_PRODUCTION,
        ),
        example_key=_ENTERPRISE_ID,
    ),
    EventSpec(
        type=EventType.production_deleted,
        payload=ProductionChanged,
        topic=topics.REGISTRY,
        key=_ENTERPRISE_KEY,
        producer="registry",
        summary="A production was (soft) deleted: its last state, with deleted = true.",
        example=ProductionChanged(
            production_id=_PRODUCTION_ID,
            enterprise_id=_ENTERPRISE_ID,
            version=2,
            deleted=True,
            attributes=_EXAMPLE_PRODUCTION,
        ),
        example_key=_ENTERPRISE_ID,
    ),
    EventSpec(
        type=EventType.api_key_changed,
        payload=ApiKeyChanged,
        topic=topics.REGISTRY,
        key="The key's enterprise id, or 'operator' for an operator key.",
        producer="registry",
        summary="An API key was issued or revoked (only its hash travels).",
        example=ApiKeyChanged(
            key_id="0193a6f0-0000-7000-8000-00000000000a",
            key_hash="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            role="company",
            enterprise_id=_ENTERPRISE_ID,
            label="ERP sync",
            version=1,
        ),
        example_key=_ENTERPRISE_ID,
    ),
    EventSpec(
        type=EventType.eligibility_changed,
        payload=EligibilityChanged,
        topic=topics.ELIGIBILITY,
        key="The subject's enterprise id (a company's results stay in order).",
        producer="rules",
        summary="One (subject, policy) result whose status or amount really changed.",
        example=EligibilityChanged(
            subject_type="production",
            subject_id=_PRODUCTION_ID,
            enterprise_id=_ENTERPRISE_ID,
            policy_id=_POLICY_ID,
            policy_version=2,
            previous_status="unknown",
            status="eligible",
            previous_amount_cny=None,
            amount_cny=300_000,
            missing_fields=[],
            explanation={"rule": "budget", "passed": True},
            cause="0193a6f0-0000-7000-8000-0000000000ff",
        ),
        example_key=_ENTERPRISE_ID,
    ),
    EventSpec(
        type=EventType.policy_impact,
        payload=PolicyImpact,
        topic=topics.ELIGIBILITY,
        key=_POLICY_KEY,
        producer="rules",
        summary="What one policy version changed across all subjects (after its run).",
        example=PolicyImpact(
            policy_id=_POLICY_ID,
            policy_version=2,
            newly_eligible=118,
            no_longer_eligible=3,
            amount_changed=12,
            eligible_total=940,
            total_potential_cny=98_000_000,
            fund_budget_cny=50_000_000,
            fund_exhausted=True,
        ),
        example_key=_POLICY_ID,
    ),
    EventSpec(
        type=EventType.snapshot_completed,
        payload=SnapshotCompleted,
        topic=topics.SNAPSHOTS,
        key="The topic the snapshot's records were written to.",
        producer="registry",
        summary="A republish committed (written by registry and ingest; read by the rebuild).",
        example=SnapshotCompleted(
            snapshot_id=uuid.UUID("0193a6f0-0000-7000-8000-0000000000aa"),
            source="registry",
            topic=topics.REGISTRY,
            records=1_000_000,
        ),
        example_key=topics.REGISTRY,
    ),
    EventSpec(
        type=EventType.eligibility_state,
        payload=EligibilityState,
        topic=topics.ELIGIBILITY_STATE,
        key="<subject_type>:<subject_id>:<policy_id> (a null value, a tombstone, when the"
        " result is withdrawn).",
        producer="rules",
        summary="The current result of one (subject, policy), compacted; a tombstone (null"
        " value, same headers) when the result is withdrawn.",
        example=EligibilityState(
            subject_type="production",
            subject_id=_PRODUCTION_ID,
            enterprise_id=_ENTERPRISE_ID,
            policy_id=_POLICY_ID,
            policy_version=2,
            status="eligible",
            amount_cny=300_000,
            missing_fields=[],
            explanation={"rule": "budget", "passed": True},
            cause="0193a6f0-0000-7000-8000-0000000000ff",
            change_event_id=uuid.UUID("0193a6f0-0000-7000-8000-0000000000e0"),
        ),
        example_key=topics.state_key("production", _PRODUCTION_ID, _POLICY_ID),
    ),
)
"""Every event type, in the order of :class:`EventType`."""

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        topics.POLICY,
        "Policy documents: every version published or revoked.",
        ("ingest",),
        ("rules", "notify"),
    ),
    TopicSpec(
        topics.REGISTRY,
        "Enterprises and productions (full snapshots with version) and API keys.",
        ("registry",),
        ("ingest", "rules", "notify"),
    ),
    TopicSpec(
        topics.ELIGIBILITY,
        "Eligibility results that changed, and each policy version's impact summary.",
        ("rules",),
        ("notify",),
    ),
    TopicSpec(
        topics.SNAPSHOTS,
        "Republish markers, compacted: the latest marker of each source topic is kept"
        " (``reelpolicy-rules rebuild`` reads them; no consumer group does).",
        ("registry", "ingest"),
        (),
    ),
    TopicSpec(
        topics.ELIGIBILITY_STATE,
        "The current eligibility result of every (subject, policy), compacted: keyed"
        " ``<subject_type>:<subject_id>:<policy_id>``, a tombstone (null value) when a"
        " result is withdrawn. Read it from the beginning (last value per key wins) to"
        " start from the current state without replaying history; no service consumes it.",
        ("rules",),
        (),
    ),
)
"""Every main topic, the snapshot topic and the eligibility state topic; each has a
dead-letter topic (``<topic>.dlq``) except the last two (no service consumes them)."""

TOMBSTONES: tuple[EventType, ...] = (EventType.eligibility_state,)
"""Event types whose key may also carry a tombstone: a null value with the same headers
(``event-type``, ``schema-version``), meaning "this key has no current value any more"."""

EXAMPLE_EVENT_ID = uuid.UUID("0193a6f0-0000-7000-8000-0000000000e1")
EXAMPLE_OCCURRED_AT = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
EXAMPLE_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def spec(event_type: EventType) -> EventSpec:
    """The catalog entry of ``event_type``."""
    for entry in EVENTS:
        if entry.type == event_type:
            return entry
    raise KeyError(event_type)


def events_on(topic: str) -> tuple[EventSpec, ...]:
    """The event types that travel on ``topic`` (a dead-letter topic: its source's)."""
    source = topic.removesuffix(".dlq")
    return tuple(e for e in EVENTS if e.topic == source)


@cache
def typed_envelope(event_type: EventType) -> type[BaseModel]:
    """The envelope of ``event_type`` with its payload typed (``EligibilityChangedEnvelope``):
    the same fields as :class:`Envelope`, ``type`` and ``schema_version`` fixed."""
    entry = spec(event_type)
    literal = cast(Any, Literal)
    model: type[BaseModel] = create_model(
        f"{entry.type.name.title().replace('_', '')}Envelope",
        __base__=Envelope,
        __doc__=f"``{entry.type.value}`` v{entry.schema_version}: {entry.summary}",
        type=(literal[entry.type.value], Field(description="The event type.")),
        schema_version=(
            literal[entry.schema_version],
            Field(default=entry.schema_version, description="The payload's schema version."),
        ),
        payload=(entry.payload, ...),
    )
    return model


def topic_schema(*topic_names: str) -> Any:
    """What a record's value on the topic (or on any of several topics) is, as a type:
    the typed envelope of its one event type, or their union discriminated by ``type``
    (a FastStream publisher's ``schema=``, a subscriber's documented body: so each
    service's ``/asyncapi`` shows typed messages)."""
    event_types = dict.fromkeys(e.type for t in topic_names for e in events_on(t))
    models = tuple(typed_envelope(t) for t in event_types)
    if not models:
        raise LookupError(f"no event type of the catalog travels on {', '.join(topic_names)}")
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


def example_envelope(event_type: EventType) -> dict[str, Any]:
    """The catalog's example of ``event_type`` as the JSON object on the wire, validated
    by the plain :class:`Envelope` and by :func:`typed_envelope`."""
    entry = spec(event_type)
    envelope = Envelope(
        event_id=EXAMPLE_EVENT_ID,
        type=entry.type,
        schema_version=entry.schema_version,
        occurred_at=EXAMPLE_OCCURRED_AT,
        producer=entry.producer,
        key=entry.example_key,
        payload=entry.example.model_dump(mode="json"),
    )
    wire: dict[str, Any] = envelope.model_dump(mode="json")
    typed_envelope(event_type).model_validate(wire)
    return wire
