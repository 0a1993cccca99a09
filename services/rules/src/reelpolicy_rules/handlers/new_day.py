"""A new day: re-evaluate the policies whose results depend on the date.

The last evaluated day is stored, so a restart catches up on the days it missed.
Several instances may tick: the exclusive projection lock and the stored day make
exactly one of them do the work.
"""

from __future__ import annotations

from datetime import date

from reelpolicy_rules.domain.calendar import policies_for_new_day
from reelpolicy_rules.handlers.policy_recalculation import recalculate_policies
from reelpolicy_rules.ports import PolicyBook, SubjectCache, UnitOfWorkFactory

CLOCK_CAUSE = "clock"


async def tick(
    *,
    uow: UnitOfWorkFactory,
    cache: SubjectCache,
    book: PolicyBook,
    today: date,
    trace_limit: int,
) -> int | None:
    """Catch up to ``today``; returns the number of changes, or None if nothing to do."""
    async with uow() as work:
        await work.projection.lock_all()
        last: date | None = await work.projection.last_day()
        if last is not None and last >= today:
            return None
        await book.refresh(work.projection)
        due = policies_for_new_day(book.active(), before=last, today=today)
        changed = 0
        if due:
            plan = await recalculate_policies(
                work,
                cache=cache,
                book=book,
                seeds=[p.id for p in due],
                today=today,
                cause=CLOCK_CAUSE,
                trace_limit=trace_limit,
            )
            changed = plan.changes.height
        await work.projection.set_last_day(today)
        await work.commit()
        return changed
