"""The per-subject path: re-evaluate one enterprise (and its productions) or one production.

Every active policy of the subject's type is evaluated with the per-subject evaluator
(full explanation traces), then stacking caps and fund draws are applied across the
subject's results, and the outcome is diffed against the stored results.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from opentelemetry import trace

from reelpolicy_common.metrics import EVALUATION_SECONDS
from reelpolicy_common.subjects import EnterpriseAttributes, ProductionAttributes
from reelpolicy_policy import Policy, Result, Subject, evaluate
from reelpolicy_rules.adapters.cache import PolicyBook
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.domain.constraints import apply_subject_constraints, fund_budgets, fund_of
from reelpolicy_rules.domain.outcomes import diff_outcomes, outcome_of
from reelpolicy_rules.handlers.changes import change_row, write_changes

_tracer = trace.get_tracer("reelpolicy.rules")


def build_subjects(
    *, enterprise_id: str, enterprise: Any, productions: Sequence[Any], include_enterprise: bool
) -> list[Subject]:
    """Live subjects from projection rows (a deleted enterprise takes its productions along)."""
    if enterprise is not None and enterprise["deleted"]:
        return []
    attrs = (
        None
        if enterprise is None
        else EnterpriseAttributes.model_validate(enterprise["attributes"])
    )
    subjects = [Subject(enterprise_id, enterprise=attrs)] if include_enterprise and attrs else []
    for row in productions:
        if not row["deleted"]:
            production = ProductionAttributes.model_validate(row["attributes"])
            subjects.append(Subject(row["production_id"], enterprise=attrs, production=production))
    return subjects


def evaluate_subjects(
    subjects: Sequence[Subject], policies: Sequence[Policy], *, today: date
) -> list[Result]:
    """Every (subject, policy of its type) result, ineligible ones included."""
    started = time.perf_counter()
    with _tracer.start_as_current_span("rules.evaluate", attributes={"rules.mode": "subject"}):
        results = [
            evaluate(p, s, today=today) for s in subjects for p in policies if p.subject == s.type
        ]
    EVALUATION_SECONDS.labels("subject").observe(time.perf_counter() - started)
    return results


async def _fund_remaining(
    work: RulesUnitOfWork, results: Sequence[Result], policies: Sequence[Policy],
    subject_ids: Sequence[str],
) -> dict[str, int]:  # fmt: skip
    by_id = {p.id: p for p in policies}
    drawing: dict[str, set[str]] = defaultdict(set)
    for p in policies:
        if (f := fund_of(p)) is not None:
            drawing[f[0]].add(p.id)
    wanted = {
        f[0]
        for r in results
        if r.status == "eligible" and r.amount_cny and (f := fund_of(by_id[r.policy_id]))
    }
    budgets = fund_budgets(policies)
    remaining: dict[str, int] = {}
    for fid in sorted(wanted):
        await work.projection.lock_fund(fid)
        held = await work.results.fund_committed(sorted(drawing[fid]), excluding=subject_ids)
        remaining[fid] = max(0, budgets[fid] - held)
    return remaining


async def reevaluate_enterprise(
    work: RulesUnitOfWork,
    book: PolicyBook,
    *,
    enterprise_id: str,
    production_id: str | None,
    today: date,
    cause: str,
) -> int:
    """Re-evaluate an enterprise and its productions (or just ``production_id``)."""
    enterprise = await work.projection.enterprise(enterprise_id)
    productions = await work.projection.productions_of(enterprise_id, only=production_id)
    subjects = build_subjects(
        enterprise_id=enterprise_id, enterprise=enterprise, productions=productions,
        include_enterprise=production_id is None,
    )  # fmt: skip
    policies = book.active()
    results = evaluate_subjects(subjects, policies, today=today)
    ids = [s.subject_id for s in subjects]
    all_ids = ([production_id] if production_id else [enterprise_id]) + [
        r["production_id"] for r in productions
    ]
    remaining = await _fund_remaining(work, results, policies, ids)
    constrained = []
    by_subject: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_subject[r.subject_id].append(r)
    for sid in ids:
        for r in apply_subject_constraints(
            by_subject[sid], policies=policies, fund_remaining=remaining
        ):
            constrained.append(
                outcome_of(
                    r, enterprise_id=enterprise_id, policy_version=book.versions[r.policy_id]
                )
            )
    previous = await work.results.for_subjects(sorted(set(all_ids)))
    changes = diff_outcomes(previous=previous, current=constrained)
    return await write_changes(work, [change_row(c) for c in changes], cause=cause)
