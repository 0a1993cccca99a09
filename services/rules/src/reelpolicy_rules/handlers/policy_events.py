"""Policy events: update the policy projection, then re-evaluate in bulk.

The exclusive projection lock is held from the first read to the last write (so no
subject update interleaves with the bulk diff). The first transaction applies the
snapshot only if it is newer, records that the event's work has started, writes the
first ``commit_rows`` changes and one ``policy.impact`` summary per new policy
version (revocations emit changes only); further transactions write the rest of the
changes, ``commit_rows`` each, so the outbox relay publishes the first while the
next are written; the last one records the event as processed.

A run that dies between two commits is finished when the event comes again: the
policy is already stored, the started record says so, and the bulk diff against the
stored results yields only the changes not yet written (the summary was sent with
the first commit and is not sent again).
"""

from __future__ import annotations

from datetime import date

from reelpolicy_common.consumer import PermanentError
from reelpolicy_common.gc_control import gc_paused
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType, PolicyPublished, PolicyRevoked
from reelpolicy_policy import PolicyValidationError, parse_policy
from reelpolicy_rules.domain.event_order import policy_applies
from reelpolicy_rules.handlers.eligibility_changes import write_changes
from reelpolicy_rules.handlers.policy_recalculation import (
    explained_rows,
    impact_event,
    plan_recalculation,
)
from reelpolicy_rules.ports import PolicyBook, SubjectCache, UnitOfWorkFactory

STARTED = ".started"
"""Suffix of the consumer name under which a policy event's first commit is recorded."""


def commit_steps(total: int, size: int) -> list[tuple[int, int]]:
    """``range(total)`` as (start, stop) slices of ``size`` (0: all at once); at least
    one, maybe empty."""
    step = size if size > 0 else max(total, 1)
    return [(start, min(start + step, total)) for start in range(0, max(total, 1), step)]


async def handle_policy_event(
    *,
    uow: UnitOfWorkFactory,
    cache: SubjectCache,
    book: PolicyBook,
    envelope: Envelope,
    consumer: str,
    today: date,
    trace_limit: int,
    commit_rows: int = 0,
) -> int:
    """Apply one policy event; returns how many results changed (in this delivery)."""
    if envelope.type not in (EventType.policy_published, EventType.policy_revoked):
        return 0
    event_id = envelope.event_id
    async with uow() as work:
        await work.hold_projection()
        if await work.processed(consumer=consumer, event_id=event_id):
            return 0
        revoke = envelope.type is EventType.policy_revoked
        if revoke:
            gone = PolicyRevoked.model_validate(envelope.payload)
            policy_id, version = gone.policy_id, gone.version
        else:
            published = PolicyPublished.model_validate(envelope.payload)
            policy_id, version = published.policy_id, published.version
        resumed = not await work.first_time(consumer=consumer + STARTED, event_id=event_id)
        if not resumed:
            state = await work.projection.policy_state(policy_id)
            stored = None if state is None else state[0]
            if not policy_applies(incoming=version, stored=stored, revoke=revoke) or (
                revoke and state is not None and state[1]
            ):
                await work.first_time(consumer=consumer, event_id=event_id)
                await work.commit()
                return 0
            if revoke:
                await work.projection.revoke_policy(policy_id)
            else:
                document = {**published.document, "version": version}
                try:
                    parse_policy(document)
                except PolicyValidationError as exc:
                    raise PermanentError(str(exc)) from None
                await work.projection.store_policy(policy_id, version, document)
        await book.refresh(work.projection)
        with gc_paused():
            plan = await plan_recalculation(
                work, cache=cache, active=book.active(), seeds=[policy_id], today=today
            )
            if not revoke and not resumed:
                work.publish(
                    topics.ELIGIBILITY, impact_event(plan, policy_id=policy_id, version=version)
                )
            steps = commit_steps(plan.changes.height, commit_rows)
            for n, (start, stop) in enumerate(steps):
                if n > 0:
                    await work.begin()
                # built step by step, so the first step commits (and is relayed) sooner
                rows = explained_rows(
                    plan,
                    cache=cache,
                    book=book,
                    today=today,
                    trace_limit=trace_limit,
                    start=start,
                    stop=stop,
                )
                await write_changes(work, rows, cause=str(event_id))
                if n == len(steps) - 1:
                    await work.first_time(consumer=consumer, event_id=event_id)
                await work.commit()
        return plan.changes.height
