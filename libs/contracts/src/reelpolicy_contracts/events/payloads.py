"""Payload models, one per event type. The envelope carries them as plain JSON."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reelpolicy_contracts.subjects import EnterpriseAttributes, ProductionAttributes

Status = Literal["eligible", "ineligible", "unknown"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyPublished(_Payload):
    """A policy document's new version (the document exactly as ingest stored it)."""

    policy_id: str
    version: int = Field(ge=1)
    previous_version: int | None = None
    document: dict[str, Any]


class PolicyRevoked(_Payload):
    policy_id: str
    version: int = Field(ge=1, description="The version that was current when revoked.")
    reason: str | None = None


class EnterpriseChanged(_Payload):
    """Full snapshot of an enterprise after a create, update or (soft) delete."""

    enterprise_id: str
    version: int = Field(ge=1)
    deleted: bool = False
    attributes: EnterpriseAttributes


class ProductionChanged(_Payload):
    """Full snapshot of a production after a create, update or (soft) delete."""

    production_id: str
    enterprise_id: str
    version: int = Field(ge=1)
    deleted: bool = False
    attributes: ProductionAttributes


class EligibilityChanged(_Payload):
    """One (subject, policy) result whose status or amount really changed."""

    subject_type: Literal["enterprise", "production"]
    subject_id: str
    enterprise_id: str
    policy_id: str
    policy_version: int
    previous_status: Status | None
    status: Status
    previous_amount_cny: int | None
    amount_cny: int | None
    missing_fields: list[str] = Field(default_factory=list)
    explanation: dict[str, Any] = Field(default_factory=dict)
    cause: str = Field(description="What changed it: an event id, or 'clock' for time.")


class EligibilityState(_Payload):
    """The current result of one (subject, policy), on the compacted state topic.

    Only results that are held travel as values (``eligible`` or ``unknown``, exactly
    what ``GET /v1/eligibility`` lists); a result that is withdrawn (it became
    ineligible, or its subject was deleted, or its policy revoked) is a tombstone: the
    key with a null value, which compaction eventually removes.
    """

    subject_type: Literal["enterprise", "production"]
    subject_id: str
    enterprise_id: str
    policy_id: str
    policy_version: int = Field(
        description="The policy version whose evaluation last changed this result (a later"
        " version that left it unchanged writes no record)."
    )
    status: Literal["eligible", "unknown"]
    amount_cny: int | None
    missing_fields: list[str] = Field(default_factory=list)
    explanation: dict[str, Any] = Field(default_factory=dict)
    cause: str = Field(description="What changed it last: an event id, or 'clock' for time.")
    change_event_id: uuid.UUID = Field(
        description="The ``eligibility.changed`` event (on the change topic) that carried"
        " this result's last change."
    )


class PolicyImpact(_Payload):
    """Summary of what one policy version changed across all subjects."""

    policy_id: str
    policy_version: int
    newly_eligible: int
    no_longer_eligible: int
    amount_changed: int
    eligible_total: int
    total_potential_cny: int
    fund_budget_cny: int | None = None
    fund_exhausted: bool = False


class ApiKeyChanged(_Payload):
    """An API key issued or revoked by the registry (only its hash travels).

    Revocation is final and key ids are never reused, so a projection applies an
    event only when its ``version`` is newer than the one it holds, and no event
    ever clears a revocation.
    """

    key_id: str
    key_hash: str
    role: Literal["operator", "company"]
    enterprise_id: str | None = None
    label: str | None = None
    revoked: bool = False
    version: int | None = Field(
        default=None,
        ge=1,
        description=(
            "The key's version in the registry: 1 when issued, one more per change"
            " (revoking makes it 2). Absent in events published before keys carried"
            " versions: such an event may add an unknown key or revoke one, and"
            " changes nothing else."
        ),
    )


class SnapshotCompleted(_Payload):
    """A republish committed: every record of ``topic`` it wrote carries the Kafka header
    ``reelpolicy-snapshot`` = ``snapshot_id``; there are ``records`` of them (distinct
    event ids). The rules rebuild trusts a snapshot only once it has read all of them."""

    snapshot_id: uuid.UUID
    source: str = Field(min_length=1, description="The service that republished.")
    topic: str = Field(min_length=1, description="The topic the snapshot's records went to.")
    records: int = Field(ge=0)
