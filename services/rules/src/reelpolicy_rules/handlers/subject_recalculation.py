"""Recalculating subjects: re-evaluate enterprises (with their productions) or productions
against every active policy (the per-subject path).

Every active policy of the subject's type is evaluated with the per-subject evaluator
(full explanation traces), then stacking caps and fund draws are applied across each
subject's results, and the outcome is diffed against the stored results. A set of
targets costs a fixed number of queries, however many it holds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from opentelemetry import trace

from reelpolicy_common.metrics import EVALUATION_SECONDS
from reelpolicy_contracts.subjects import EnterpriseAttributes, ProductionAttributes
from reelpolicy_policy import (
    Policy,
    Result,
    Subject,
    evaluate_values,
    may_apply,
    subject_values,
)
from reelpolicy_rules.domain.constraints import (
    FundLedger,
    apply_subject_constraints,
    fund_budgets,
    fund_holdings,
    fund_of,
)
from reelpolicy_rules.domain.outcomes import Key, Outcome, diff_outcomes, outcome_of
from reelpolicy_rules.handlers.eligibility_changes import ChangeRow, change_row, write_changes
from reelpolicy_rules.ports import PolicyBook, UnitOfWork

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
    subjects: Sequence[Subject],
    policies: Sequence[Policy],
    *,
    today: date,
    stored: Container[Key] | None = None,
) -> list[Result]:
    """Every (subject, policy of its type) result, ineligible ones included.

    With ``stored`` (the (subject, policy) keys that have a stored result), a pair
    outside it that :func:`~reelpolicy_policy.may_apply` rules out is left out: it is
    ineligible now and was before (absent), so it cannot be a change, and its trace
    would never be read. A subject's attributes are flattened once for all policies.
    """
    started = time.perf_counter()
    with _tracer.start_as_current_span("rules.evaluate", attributes={"rules.mode": "subject"}):
        results: list[Result] = []
        for s in subjects:
            values = subject_values(s, today)
            results.extend(
                evaluate_values(p, values, subject_id=s.subject_id, today=today)
                for p in policies
                if p.subject == s.type
                and (
                    stored is None
                    or (s.subject_id, p.id) in stored
                    or may_apply(p, values, today=today)
                )
            )
    EVALUATION_SECONDS.labels("subject").observe(time.perf_counter() - started)
    return results


@dataclass(frozen=True)
class Target:
    """What one registry change re-evaluates: an enterprise and its productions, or one
    production (``production_id``); ``cause`` is the event id its changes cite."""

    enterprise_id: str
    production_id: str | None
    cause: str


@dataclass
class _Plan:
    target: Target
    subjects: list[Subject]
    results: list[Result]
    touched: list[str]  # every subject id whose stored results this target replaces


def _plan(target: Target, *, enterprise: Any, productions: Sequence[Any]) -> _Plan:
    """A target's subjects (``productions``: its enterprise's rows we read), not yet
    evaluated: that waits for the stored results it replaces."""
    eid, pid = target.enterprise_id, target.production_id
    rows = [r for r in productions if pid is None or r["production_id"] == pid]
    subjects = build_subjects(
        enterprise_id=eid, enterprise=enterprise, productions=rows, include_enterprise=pid is None
    )
    touched = [pid or eid] + [r["production_id"] for r in rows if r["production_id"] != pid]
    return _Plan(target, subjects, [], touched)


async def reevaluate_targets(
    work: UnitOfWork, book: PolicyBook, *, targets: Sequence[Target], today: date
) -> int:
    """Re-evaluate ``targets`` (one per enterprise) as if one after the other.

    Every target is evaluated with every active policy; stacking caps apply per subject
    and fund draws in target order (a :class:`FundLedger`), so the outcome is the one
    separate steps would reach, with a fixed number of queries for the whole set.
    Returns how many results changed.
    """
    policies = book.active()
    enterprises = await work.projection.enterprises(sorted({t.enterprise_id for t in targets}))
    productions: dict[str, list[Any]] = defaultdict(list)
    for row in await work.projection.productions_for(
        enterprise_ids=[t.enterprise_id for t in targets if t.production_id is None],
        production_ids=[t.production_id for t in targets if t.production_id is not None],
    ):
        productions[row["enterprise_id"]].append(row)
    plans = [
        _plan(
            t, enterprise=enterprises.get(t.enterprise_id), productions=productions[t.enterprise_id]
        )
        for t in targets
    ]
    stored = await work.results.for_subjects(sorted({s for p in plans for s in p.touched}))
    for plan in plans:
        plan.results = evaluate_subjects(plan.subjects, policies, today=today, stored=stored)
    previous: dict[str, dict[Key, Outcome]] = defaultdict(dict)
    for key, outcome in stored.items():
        previous[key[0]][key] = outcome
    fund_by_policy = {p.id: f[0] for p in policies if (f := fund_of(p)) is not None}
    ledger = await _fund_ledger(work, plans, policies, fund_by_policy)
    rows: list[ChangeRow] = []
    causes: list[str] = []
    for plan in plans:
        live = {s.subject_id for s in plan.subjects}
        mine = {k: o for sid in dict.fromkeys(plan.touched) for k, o in previous[sid].items()}
        constrained = _constrain(plan, ledger, mine, live, fund_by_policy, policies, book)
        for change in diff_outcomes(previous=mine, current=constrained):
            rows.append(change_row(change))
            causes.append(plan.target.cause)
    return await write_changes(work, rows, cause=causes)


def _holdings(outcomes: Iterable[Outcome], fund_by_policy: dict[str, str]) -> dict[str, int]:
    return fund_holdings(
        ((o.policy_id, o.status, o.amount_cny) for o in outcomes), fund_by_policy=fund_by_policy
    )


def _constrain(
    plan: _Plan,
    ledger: FundLedger | None,
    mine: dict[Key, Outcome],
    live: set[str],
    fund_by_policy: dict[str, str],
    policies: Sequence[Policy],
    book: PolicyBook,
) -> list[Outcome]:
    own = _holdings((o for k, o in mine.items() if k[0] in live), fund_by_policy)
    remaining = ledger.remaining_for(own) if ledger else {}
    by_subject: dict[str, list[Result]] = defaultdict(list)
    for r in plan.results:
        by_subject[r.subject_id].append(r)
    eid = plan.target.enterprise_id
    out = [
        outcome_of(r, enterprise_id=eid, policy_version=book.versions[r.policy_id])
        for s in plan.subjects
        for r in apply_subject_constraints(
            by_subject[s.subject_id], policies=policies, fund_remaining=remaining
        )
    ]
    if ledger:
        ledger.replace(
            before=_holdings(mine.values(), fund_by_policy), after=_holdings(out, fund_by_policy)
        )
    return out


async def _fund_ledger(
    work: UnitOfWork,
    plans: Sequence[_Plan],
    policies: Sequence[Policy],
    fund_by_policy: dict[str, str],
) -> FundLedger | None:
    """Lock the funds the plans' eligible results would draw on and read what they hold."""
    wanted = sorted(
        fund_holdings(
            ((r.policy_id, r.status, r.amount_cny) for plan in plans for r in plan.results),
            fund_by_policy=fund_by_policy,
        )
    )
    if not wanted:
        return None
    await work.projection.lock_funds(wanted)
    drawing = {pid: fid for pid, fid in fund_by_policy.items() if fid in wanted}
    committed = await work.results.committed(sorted(drawing))
    held = fund_holdings(
        ((pid, "eligible", amount) for pid, amount in committed.items()), fund_by_policy=drawing
    )
    budgets = {fid: b for fid, b in fund_budgets(policies).items() if fid in wanted}
    return FundLedger(budgets=budgets, held=held)
