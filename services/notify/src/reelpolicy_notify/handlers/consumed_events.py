"""Consumed events: keep the projections and create the alerts' deliveries.

Events are applied in one transaction (per event, or per consumed batch) that first
records them as processed (``record_processed_many``): a redelivered or duplicated
event changes nothing, and the deliveries it creates commit together with that
record or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from reelpolicy_contracts.events import (
    EligibilityChanged,
    EnterpriseChanged,
    Envelope,
    EventType,
    PolicyPublished,
    PolicyRevoked,
)
from reelpolicy_notify.domain.alerts import eligibility_alert, policy_changed_alert
from reelpolicy_notify.domain.filters import matches
from reelpolicy_notify.domain.policies import policy_facts
from reelpolicy_notify.domain.summaries import change_items, english_sentence
from reelpolicy_notify.handlers.fanout import AlertTarget, file_alerts
from reelpolicy_notify.ports import UnitOfWork, UowFactory

CONSUMER = "notify"


async def handle_event(
    *, uow: UowFactory, envelope: Envelope, traceparent: str | None, consumer: str = CONSUMER
) -> bool:
    """Apply one event exactly once; False if it had been processed already."""
    return await handle_events(uow=uow, events=[(envelope, traceparent)], consumer=consumer) == 1


async def handle_events(
    *,
    uow: UowFactory,
    events: Sequence[tuple[Envelope, str | None]],
    consumer: str = CONSUMER,
) -> int:
    """Apply (event, traceparent) pairs in order, in one transaction, each exactly once.

    Returns how many were new. Consecutive eligibility changes (the bulk of the
    traffic) are applied together: one projection upsert, one subscription lookup
    and one delivery insert for the whole run of them.
    """
    async with uow() as work:
        fresh = await work.record_processed_many(
            consumer=consumer, event_ids=[e.event_id for e, _ in events]
        )
        run: list[tuple[Envelope, str | None]] = []
        applied = 0
        for envelope, traceparent in events:
            if envelope.event_id not in fresh:
                continue
            fresh.discard(envelope.event_id)  # the same event twice in a batch: once
            applied += 1
            if envelope.type is EventType.eligibility_changed:
                run.append((envelope, traceparent))
                continue
            await _eligibility_changed(work, run)
            run = []
            await _apply_other(work, envelope, traceparent)
        await _eligibility_changed(work, run)
        await work.commit()
        return applied


async def _apply_other(work: UnitOfWork, envelope: Envelope, traceparent: str | None) -> None:
    kind = envelope.type
    if kind in (EventType.policy_published, EventType.policy_revoked):
        await _policy_changed(work, envelope, traceparent)
    elif kind in (EventType.enterprise_upserted, EventType.enterprise_deleted):
        change = EnterpriseChanged.model_validate(envelope.payload)
        await work.projections.upsert_enterprise(
            change.enterprise_id,
            region_code=change.attributes.region_code,
            version=change.version,
            deleted=change.deleted or kind is EventType.enterprise_deleted,
        )
    elif kind is EventType.api_key_changed:
        await work.apply_api_key_changed(envelope.payload)


async def _eligibility_changed(
    work: UnitOfWork, events: Sequence[tuple[Envelope, str | None]]
) -> None:
    if not events:
        return
    changes = [
        EligibilityChanged.model_validate(envelope.payload).model_dump(mode="json")
        for envelope, _ in events
    ]
    subscribed, known = await work.subscriptions.record_eligibility_and_find(changes)
    facts = {
        policy_id: policy_facts(p["document"], version=p["version"], revoked=p["revoked"])
        for policy_id, p in known.items()
    }
    platform_wide = subscribed.get(None, [])
    targets = []
    for (envelope, traceparent), change in zip(events, changes, strict=True):
        subscriptions = subscribed.get(change["enterprise_id"], []) + platform_wide
        if not subscriptions:
            continue
        policy = facts.get(change["policy_id"])
        alert = eligibility_alert(
            event_id=envelope.event_id,
            occurred_at=envelope.occurred_at,
            change=change,
            policy=policy,
        )
        targets += [
            AlertTarget(s, alert, traceparent)
            for s in subscriptions
            if matches(
                s.filters, policy_id=alert.policy_id, policy=policy, amount_cny=alert.amount_cny
            )
        ]
    await file_alerts(work, targets, now=datetime.now(UTC))


async def _policy_changed(work: UnitOfWork, envelope: Envelope, traceparent: str | None) -> None:
    known = await work.projections.policy(envelope.key)
    previous_doc = known[1] if known else None
    previous_version = known[0].version if known else None
    change: Literal["published", "revoked"]
    if envelope.type is EventType.policy_published:
        published = PolicyPublished.model_validate(envelope.payload)
        if previous_version is not None and published.version < previous_version:
            return  # an older version arriving late: the projection is already ahead
        document, version, change = published.document, published.version, "published"
        if known and not known[0].revoked and previous_doc == document:
            return  # a republish of what we already have: nothing changed
        await work.projections.save_policy(
            published.policy_id, version=version, document=document, revoked=False
        )
        policy_changes = change_items(previous_doc, document)
    else:
        revoked = PolicyRevoked.model_validate(envelope.payload)
        if known is None or known[0].revoked:
            return
        document, version, change = known[1], known[0].version, "revoked"
        await work.projections.save_policy(
            revoked.policy_id, version=version, document=document, revoked=True
        )
        policy_changes = change_items(previous_doc, document, revoked=True)
        if revoked.reason:
            policy_changes.append(("revoke_reason", {"reason": revoked.reason}))
    policy = policy_facts(document, version=version, revoked=change == "revoked")
    alert = policy_changed_alert(
        event_id=envelope.event_id,
        occurred_at=envelope.occurred_at,
        policy=policy,
        change=change,
        previous_version=previous_version,
        summary=[english_sentence(key, params) for key, params in policy_changes],
        changes=policy_changes,
    )
    candidates = await work.subscriptions.for_region(policy.region_prefix, "policy.changed")
    targets = [
        AlertTarget(s, alert, traceparent)
        for s, _enterprise_id in candidates
        if matches(
            s.filters, policy_id=policy.policy_id, policy=policy, amount_cny=alert.amount_cny
        )
    ]
    await file_alerts(work, targets, now=datetime.now(UTC))
