"""Recalculating policies: every subject re-evaluated for some policies at once, with the
columnar engine (the "bulk" path, as against the per-subject one).

Used for a policy change (new, new version, revoked), a new day (the clock), a rebuild
and a simulation. The seed policies are evaluated together with every policy sharing
a stacking group or a fund with them (their results constrain each other), over the
in-process subject cache; the result is diffed against the stored results.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
from opentelemetry import trace

from reelpolicy_common.gc_control import gc_paused
from reelpolicy_common.metrics import EVALUATION_SECONDS
from reelpolicy_contracts.events import Envelope, EventType, PolicyImpact
from reelpolicy_policy import Policy, evaluate_columnar
from reelpolicy_rules.domain.constraints import fund_of, related_policies
from reelpolicy_rules.domain.outcome_frames import (
    OUTCOME_SCHEMA,
    FundState,
    ImpactCounts,
    apply_frame_constraints,
    diff_frames,
    impact_counts,
    outcome_frame,
)
from reelpolicy_rules.handlers.eligibility_changes import PRODUCER, write_changes
from reelpolicy_rules.handlers.explain import explain_rows
from reelpolicy_rules.ports import PolicyBook, SubjectCache, UnitOfWork

_tracer = trace.get_tracer("reelpolicy.rules")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecalculationPlan:
    policy_ids: list[str]
    policies: dict[str, Policy]
    current: pl.DataFrame
    changes: pl.DataFrame
    funds: dict[str, FundState]

    def impact(self, policy_id: str) -> ImpactCounts:
        return impact_counts(changes=self.changes, current=self.current, policy_id=policy_id)

    def fund_of(self, policy_id: str) -> FundState | None:
        policy = self.policies.get(policy_id)
        fund = fund_of(policy) if policy else None
        return None if fund is None else self.funds.get(fund[0])


def evaluate_policies(
    cache: SubjectCache, policies: Sequence[Policy], *, today: date
) -> tuple[pl.DataFrame, dict[str, FundState]]:
    """Stored-result rows (after constraints) of ``policies`` over every cached subject."""
    started = time.perf_counter()
    parts = []
    with _tracer.start_as_current_span("rules.evaluate", attributes={"rules.mode": "bulk"}):
        for kind in ("enterprise", "production"):
            chosen = [p for p in policies if p.subject == kind]
            if chosen:
                frame = cache.frame(kind)
                bulk = evaluate_columnar(chosen, frame, today=today)
                parts.append(outcome_frame(bulk, subjects=frame, subject_type=kind))
        current = pl.concat(parts) if parts else pl.DataFrame(schema=OUTCOME_SCHEMA)
        result = apply_frame_constraints(current, policies=policies)
    EVALUATION_SECONDS.labels("bulk").observe(time.perf_counter() - started)
    return result


async def plan_recalculation(
    work: UnitOfWork,
    *,
    cache: SubjectCache,
    active: Sequence[Policy],
    seeds: Sequence[str],
    today: date,
    compared: Sequence[str] | None = None,
) -> RecalculationPlan:
    """Evaluate and diff (no writes). Call with the projection locked (``lock_all``), or
    in a read-only snapshot with a copy of the cache (``handlers.simulation``).

    Every related policy is evaluated (their results constrain each other); the changes
    are those of ``compared`` only when given (a simulation reports one policy's, and
    so reads no other policy's stored results), else of every policy evaluated.

    The columnar work runs in a worker thread (polars releases the GIL), so the event
    loop keeps serving the service's other work meanwhile.
    """
    started = time.perf_counter()
    await cache.refresh(work.projection)
    ids = related_policies(seeds, active)
    running = [p for p in active if p.id in ids]
    current, funds = await asyncio.to_thread(evaluate_policies, cache, running, today=today)
    diffed = sorted(ids) if compared is None else sorted(compared)
    previous = await work.results.frame_for_policies(diffed)
    ours = current if compared is None else current.filter(pl.col("policy_id").is_in(diffed))
    changes = await asyncio.to_thread(diff_frames, previous, ours)
    log.info(
        "bulk %s: %d change(s) planned in %.2fs",
        list(seeds),
        changes.height,
        time.perf_counter() - started,
    )
    return RecalculationPlan(sorted(ids), {p.id: p for p in running}, current, changes, funds)


def impact_event(plan: RecalculationPlan, *, policy_id: str, version: int) -> Envelope:
    counts = plan.impact(policy_id)
    fund = plan.fund_of(policy_id)
    payload = PolicyImpact(
        policy_id=policy_id,
        policy_version=version,
        newly_eligible=counts.newly_eligible,
        no_longer_eligible=counts.no_longer_eligible,
        amount_changed=counts.amount_changed,
        eligible_total=counts.eligible_total,
        total_potential_cny=counts.total_potential_cny,
        fund_budget_cny=None if fund is None else fund.budget_cny,
        fund_exhausted=False if fund is None else fund.exhausted,
    )
    return Envelope(
        type=EventType.policy_impact,
        producer=PRODUCER,
        key=policy_id,
        payload=payload.model_dump(mode="json"),
    )


_EXPLAIN_COLUMNS = [
    "subject_id",
    "policy_id",
    "status",
    "amount_cny",
    "missing_fields",
    "fund_id",
    "requested_cny",
]


def change_rows(changes: pl.DataFrame, *, versions: Mapping[str, int]) -> list[dict[str, Any]]:
    """The change rows (``EligibilityChanged`` fields less ``cause`` and ``explanation``)."""
    if changes.is_empty():
        return []
    status = pl.col("status")
    frame = changes.select(
        "subject_type",
        "subject_id",
        "enterprise_id",
        "policy_id",
        pl.col("policy_id")
        .replace_strict(versions, default=0, return_dtype=pl.Int64)
        .alias("policy_version"),
        "previous_status",
        "status",
        "previous_amount_cny",
        pl.when(status != "ineligible").then(pl.col("amount_cny")).alias("amount_cny"),
        pl.when(status == "unknown")
        .then(pl.col("missing_fields"))
        .otherwise(pl.lit([], pl.List(pl.String)))
        .alias("missing_fields"),
    )
    return frame.to_dicts()


def explained_rows(
    plan: RecalculationPlan,
    *,
    cache: SubjectCache,
    book: PolicyBook,
    today: date,
    trace_limit: int,
    start: int = 0,
    stop: int | None = None,
) -> list[dict[str, Any]]:
    """The plan's change rows ``start:stop`` (all by default), each with its explanation,
    ready for ``write_changes``. They carry full traces only if the whole plan has at
    most ``trace_limit`` changes, however it is sliced."""
    changes = plan.changes.slice(start, None if stop is None else stop - start)
    out = change_rows(changes, versions=book.versions)
    explanations = explain_rows(
        changes.select([c for c in _EXPLAIN_COLUMNS if c in changes.columns]).to_dicts(),
        cache=cache,
        policies=plan.policies,
        versions=book.versions,
        funds=plan.funds,
        today=today,
        full_traces=plan.changes.height <= trace_limit,
    )
    for row, expl in zip(out, explanations, strict=True):
        row["explanation"] = expl
    return out


async def recalculate_policies(
    work: UnitOfWork,
    *,
    cache: SubjectCache,
    book: PolicyBook,
    seeds: Sequence[str],
    today: date,
    cause: str,
    trace_limit: int,
) -> RecalculationPlan:
    """Re-evaluate ``seeds`` (and related policies) and write the changes, in the
    caller's transaction.

    The cyclic garbage collector is paused meanwhile (:mod:`reelpolicy_common.gc_control`).
    """
    with gc_paused():
        plan = await plan_recalculation(
            work, cache=cache, active=book.active(), seeds=seeds, today=today
        )
        out = explained_rows(plan, cache=cache, book=book, today=today, trace_limit=trace_limit)
        await write_changes(work, out, cause=cause)
        return plan
