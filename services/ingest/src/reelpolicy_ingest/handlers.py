"""Ingest use cases: submit, revoke, republish policy documents.

Each takes a unit-of-work factory (the port) and keyword-only arguments, commits
explicitly, and emits its events through the unit of work (the outbox).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import (
    Envelope,
    EventType,
    PolicyPublished,
    PolicyRevoked,
    new_snapshot_id,
    snapshot_headers,
    snapshot_marker,
)
from reelpolicy_ingest.domain import (
    StoredPolicy,
    check_document_size,
    content_sha,
    decide_version,
)
from reelpolicy_ingest.ports import UnitOfWork
from reelpolicy_policy import Policy, policy_document_dict

UowFactory = Callable[[], UnitOfWork]
PRODUCER = "ingest"


class VersionConflictError(Exception):
    def __init__(self, message: str, *, next_version: int) -> None:
        super().__init__(message)
        self.next_version = next_version


class PolicyNotFoundError(Exception):
    pass


@dataclass(frozen=True)
class Submitted:
    created: bool
    policy: StoredPolicy


def _published(policy: StoredPolicy, previous: int | None) -> Envelope:
    payload = PolicyPublished(
        policy_id=policy.policy_id,
        version=policy.version,
        previous_version=previous,
        document=policy.document,
    )
    return Envelope(
        type=EventType.policy_published,
        producer=PRODUCER,
        key=policy.policy_id,
        payload=payload.model_dump(mode="json"),
    )


def _revoked(policy: StoredPolicy, reason: str | None) -> Envelope:
    payload = PolicyRevoked(policy_id=policy.policy_id, version=policy.version, reason=reason)
    return Envelope(
        type=EventType.policy_revoked,
        producer=PRODUCER,
        key=policy.policy_id,
        payload=payload.model_dump(mode="json"),
    )


def _canonical_form(policy: Policy) -> tuple[dict[str, Any], int | None, str]:
    """The canonical document (without its version), the version supplied, its hash."""
    canonical = policy_document_dict(policy)
    check_document_size(canonical)  # DocumentTooLargeError: its event could not be published
    supplied = canonical.pop("version", None)
    return canonical, supplied, content_sha(canonical)


async def submit_policy(*, uow: UowFactory, policy: Policy) -> Submitted:
    """Store a validated ``policy`` as the next version of its id.

    Raises :class:`VersionConflictError` for a supplied version that is not the next
    one, :class:`~reelpolicy_ingest.domain.DocumentTooLargeError` for a document over
    the canonical size limit. An identical resubmission of the latest version is a no-op.
    """
    # serializing and hashing a large document takes milliseconds: off the event loop
    canonical, supplied, sha = await asyncio.to_thread(_canonical_form, policy)
    async with uow() as work:
        await work.policies.lock(canonical["id"])
        latest = await work.policies.latest(canonical["id"])
        decision = decide_version(latest=latest, supplied_version=supplied, sha=sha)
        if decision.outcome == "conflict":
            raise VersionConflictError(decision.message, next_version=decision.version)
        if decision.outcome == "unchanged":
            assert latest is not None
            return Submitted(created=False, policy=latest)
        stored = StoredPolicy(
            canonical["id"], decision.version, {**canonical, "version": decision.version}, sha
        )
        await work.policies.add_version(stored)
        work.publish(topics.POLICY, _published(stored, latest.version if latest else None))
        await work.commit()
        return Submitted(created=True, policy=stored)


async def revoke_policy(*, uow: UowFactory, policy_id: str, reason: str | None) -> StoredPolicy:
    """Revoke a policy (an event, not an erasure); revoking twice changes nothing."""
    async with uow() as work:
        await work.policies.lock(policy_id)
        latest = await work.policies.latest(policy_id)
        if latest is None:
            raise PolicyNotFoundError(policy_id)
        if latest.revoked:
            return latest
        await work.policies.set_revoked(policy_id, revoked=True)
        work.publish(topics.POLICY, _revoked(latest, reason))
        await work.commit()
        return StoredPolicy(
            latest.policy_id, latest.version, latest.document, latest.content_sha, True
        )


async def republish_all(*, uow: UowFactory, page_size: int = 500) -> int:
    """Emit the current state of every policy again (after the topics were reset, or
    before a rules rebuild) as one snapshot: each event tagged with the snapshot id,
    then (same transaction) a ``snapshot.completed`` marker with their count."""
    snapshot_id = new_snapshot_id()
    count = 0
    after: str | None = None
    async with uow() as work:
        while batch := await work.policies.list_latest(after=after, limit=page_size):
            events = [
                _revoked(policy, "republished") if policy.revoked else _published(policy, None)
                for policy in batch
            ]
            await work.publish_many(topics.POLICY, events, headers=snapshot_headers(snapshot_id))
            count += len(batch)
            after = batch[-1].policy_id
        work.publish(
            topics.SNAPSHOTS,
            snapshot_marker(
                snapshot_id=snapshot_id, source=PRODUCER, topic=topics.POLICY, records=count
            ),
        )
        await work.commit()
    return count
