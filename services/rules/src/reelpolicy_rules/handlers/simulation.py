"""Simulating a draft policy: its impact on the projection as one snapshot saw it,
without a lock any live work waits for.

The shared caches are copied first (one synchronous step: rows and seq cursors of one
moment; the simulation process is sent their states so, see
``adapters.simulation_process``), then one READ ONLY REPEATABLE READ transaction reads what was written since
those cursors into the copies (the shared caches are neither changed nor advanced) and
the stored results the plan diffs against. The copies then hold the projection as that
snapshot saw it:

- a row committed after a cache last read carries a seq above its cursor: the subject
  cache reads under the exclusive projection lock, and every later subject writer takes
  its seq after that lock is released; policies are written one at a time under that
  lock, so no committed policy row has a seq above one not yet committed;
- the only writes a copy can hold that the snapshot does not see are those of a bulk run
  still in its transaction (it refreshes the book, or a rebuild the cache, before it
  commits). Then no row the snapshot sees reaches that copy's cursor, as every later
  writer waits for that run; such a copy is dropped and read whole from the snapshot.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from reelpolicy_policy import Policy
from reelpolicy_rules.domain.outcome_frames import SimulationReport
from reelpolicy_rules.handlers.policy_recalculation import RecalculationPlan, plan_recalculation
from reelpolicy_rules.ports import PolicyBook, SubjectCache, UnitOfWorkFactory

_SAMPLE_COLUMNS = [
    "subject_type",
    "subject_id",
    "enterprise_id",
    "previous_status",
    "status",
    "previous_amount_cny",
    "amount_cny",
]


def report(plan: RecalculationPlan, *, policy_id: str, sample_size: int) -> SimulationReport:
    """The report of ``policy_id`` in ``plan`` (columnar work: run it off the event loop)."""
    changes = plan.changes.filter(pl.col("policy_id") == policy_id)
    return SimulationReport(
        counts=plan.impact(policy_id),
        changed=changes.height,
        fund=plan.fund_of(policy_id),
        sample=changes.sort("subject_id").head(sample_size).select(_SAMPLE_COLUMNS).to_dicts(),
    )


async def simulate_policy(
    *,
    uow: UnitOfWorkFactory,
    cache: SubjectCache,
    book: PolicyBook,
    draft: Policy,
    today: date,
) -> RecalculationPlan:
    """The recalculation ``draft`` would cause (in place of the policy of its id), planned
    over one snapshot; nothing is written and nothing shared is changed. Its changes are
    the draft's own (the policies it is evaluated with are not diffed)."""
    subjects, policies = cache.copy(), book.copy()  # no await between: one moment
    async with uow() as work:  # never committed
        await work.read_only_snapshot()
        policy_seq, subject_seq = await work.projection.latest_seqs()
        if policies.seq > policy_seq:
            policies.reset()
        if subjects.seq > subject_seq:
            subjects.reset()
        await policies.refresh(work.projection)
        active = [p for p in policies.active() if p.id != draft.id] + [draft]
        return await plan_recalculation(
            work, cache=subjects, active=active, seeds=[draft.id], today=today, compared=[draft.id]
        )
