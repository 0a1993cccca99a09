"""Policy events: update the policy projection, then re-evaluate in bulk.

One transaction holds the exclusive projection lock (so no subject update interleaves
with the bulk diff), records the event as processed, applies the snapshot only if it
is newer, writes the changed results, their events and one ``policy.impact`` summary
per new policy version (revocations emit changes only).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from reelpolicy_common import topics
from reelpolicy_common.consumer import PermanentError
from reelpolicy_common.events import Envelope, EventType, PolicyPublished, PolicyRevoked
from reelpolicy_policy import PolicyValidationError, parse_policy
from reelpolicy_rules.adapters.cache import PolicyBook, SubjectCache
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.domain.snapshots import policy_applies
from reelpolicy_rules.handlers.bulk import impact_event, run_bulk

UowFactory = Callable[[], RulesUnitOfWork]


async def handle_policy_event(
    *,
    uow: UowFactory,
    cache: SubjectCache,
    book: PolicyBook,
    envelope: Envelope,
    consumer: str,
    today: date,
    trace_limit: int,
) -> int:
    """Apply one policy event; returns how many results changed."""
    if envelope.type not in (EventType.policy_published, EventType.policy_revoked):
        return 0
    async with uow() as work:
        await work.projection.lock_all()
        if not await work.first_time(consumer=consumer, event_id=envelope.event_id):
            return 0
        revoke = envelope.type is EventType.policy_revoked
        if revoke:
            gone = PolicyRevoked.model_validate(envelope.payload)
            policy_id, version = gone.policy_id, gone.version
        else:
            published = PolicyPublished.model_validate(envelope.payload)
            policy_id, version = published.policy_id, published.version
        state = await work.projection.policy_state(policy_id)
        stored = None if state is None else state[0]
        if not policy_applies(incoming=version, stored=stored, revoke=revoke) or (
            revoke and state is not None and state[1]
        ):
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
        await book.refresh(work.conn)
        plan = await run_bulk(
            work, cache=cache, book=book, seeds=[policy_id], today=today,
            cause=str(envelope.event_id), trace_limit=trace_limit,
        )  # fmt: skip
        if not revoke:
            work.publish(
                topics.ELIGIBILITY, impact_event(plan, policy_id=policy_id, version=version)
            )
        await work.commit()
        return plan.changes.height
