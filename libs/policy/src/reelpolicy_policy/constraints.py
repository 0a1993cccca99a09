"""Cross-policy constraints, applied after per-policy evaluation (either evaluator).

* Stacking caps (F-SZ-01): policies joining the same ``constraints.stacking_group``
  share one cap per subject. Within a (subject, group), eligible results are served
  before unknown ones, then larger amounts first, then by policy id; each gets
  ``min(amount, cap - already granted)``. The cap is the smallest one declared.
* Fund budgets (F-SH-04): :func:`allocate_fund` walks the eligible results of the
  policies drawing on a fund in a deterministic order (by default subject id, then
  policy id), granting each ``min(amount, remaining)``; the rest are unfunded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl
from pydantic import BaseModel

from reelpolicy_policy.evaluate import Result
from reelpolicy_policy.model import Policy


def _by_id(policies: Iterable[Policy]) -> dict[str, Policy]:
    return {p.id: p for p in policies}


def stacking_caps(policies: Iterable[Policy]) -> dict[str, tuple[str, int]]:
    """policy id -> (stacking group id, cap); the smallest cap declared for a group wins."""
    caps: dict[str, int] = {}
    members: dict[str, str] = {}
    for p in policies:
        g = p.constraints.stacking_group
        if g is not None:
            caps[g.id] = min(caps.get(g.id, g.cap_cny), g.cap_cny)
            members[p.id] = g.id
    return {pid: (gid, caps[gid]) for pid, gid in members.items()}


def _stack_key(r: Result) -> tuple[int, int, str]:
    return (r.status != "eligible", -(r.amount_cny or 0), r.policy_id)


def apply_stacking(results: Sequence[Result], *, policies: Iterable[Policy]) -> list[Result]:
    """Trim amounts so each subject's results within a stacking group fit its cap.

    Works on any set of results (one subject or all); order of the output = input.
    """
    caps = stacking_caps(policies)
    buckets: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(results):
        if r.policy_id in caps and r.status != "ineligible" and r.amount_cny is not None:
            buckets[(r.subject_id, caps[r.policy_id][0])].append(i)
    out = list(results)
    for (_, gid), idxs in buckets.items():
        cap = caps[results[idxs[0]].policy_id][1]
        granted = 0
        for i in sorted(idxs, key=lambda i: _stack_key(results[i])):
            r = results[i]
            amount = r.amount_cny or 0
            give = max(0, min(amount, cap - granted))
            granted += give
            if give != amount:
                expl = dict(r.explanation)
                expl["stacking"] = {"group": gid, "cap_cny": cap, "before": amount, "after": give}
                out[i] = r.model_copy(update={"amount_cny": give, "explanation": expl})
    return out


def apply_stacking_frame(long: pl.DataFrame, *, policies: Iterable[Policy]) -> pl.DataFrame:
    """:func:`apply_stacking` over a long frame (``ColumnarResult.long()`` layout)."""
    caps = stacking_caps(policies)
    if not caps:
        return long
    groups = pl.DataFrame(
        {
            "policy_id": list(caps),
            "_group": [g for g, _ in caps.values()],
            "_cap": [c for _, c in caps.values()],
        },
        schema={"policy_id": pl.String, "_group": pl.String, "_cap": pl.Int64},
    )
    df = long.with_row_index("_row").join(groups, on="policy_id", how="left")
    active = (
        pl.col("_group").is_not_null()
        & (pl.col("status") != "ineligible")
        & pl.col("amount_cny").is_not_null()
    )
    ranked = (
        df.filter(active)
        .with_columns((pl.col("status") != "eligible").alias("_rank"))
        .sort(
            ["subject_id", "_group", "_rank", "amount_cny", "policy_id"],
            descending=[False, False, False, True, False],
        )
        .with_columns(
            (
                pl.col("amount_cny").cum_sum().over(["subject_id", "_group"]) - pl.col("amount_cny")
            ).alias("_before")
        )
        .with_columns(
            pl.min_horizontal(
                pl.col("amount_cny"), (pl.col("_cap") - pl.col("_before")).clip(0)
            ).alias("_granted")
        )
        .select("_row", "_granted")
    )
    return (
        df.join(ranked, on="_row", how="left")
        .sort("_row")
        .with_columns(pl.coalesce("_granted", "amount_cny").alias("amount_cny"))
        .drop("_row", "_group", "_cap", "_granted")
    )


class FundAllocation(BaseModel):
    subject_id: str
    policy_id: str
    requested_cny: int
    granted_cny: int


class FundReport(BaseModel):
    fund_id: str
    budget_cny: int
    committed_cny: int
    remaining_cny: int
    exhausted: bool
    funded: list[FundAllocation]
    unfunded: list[FundAllocation]
    pending_unknown_cny: int
    """Upper-bound amounts of ``unknown`` results that may later draw on the fund."""


def _default_order(r: Result) -> Any:
    return (r.subject_id, r.policy_id)


def allocate_fund(
    results: Iterable[Result],
    *,
    policies: Iterable[Policy],
    order: Callable[[Result], Any] = _default_order,
) -> list[FundReport]:
    """Committed vs budget for every fund, and which subjects are funded, in ``order``."""
    by_id = _by_id(policies)
    funds: dict[str, int] = {}
    drawers: dict[str, list[Result]] = defaultdict(list)
    pending: dict[str, int] = defaultdict(int)
    for p in by_id.values():
        f = p.constraints.fund
        if f is not None:
            funds[f.id] = min(funds.get(f.id, f.budget_cny), f.budget_cny)
    for r in results:
        pol = by_id.get(r.policy_id)
        f = pol.constraints.fund if pol else None
        if f is None or not r.amount_cny:
            continue
        if r.status == "eligible":
            drawers[f.id].append(r)
        elif r.status == "unknown":
            pending[f.id] += r.amount_cny
    reports = []
    for fid, budget in sorted(funds.items()):
        remaining = budget
        funded: list[FundAllocation] = []
        unfunded: list[FundAllocation] = []
        for r in sorted(drawers[fid], key=order):
            amount = r.amount_cny or 0
            give = min(amount, remaining)
            remaining -= give
            row = FundAllocation(
                subject_id=r.subject_id,
                policy_id=r.policy_id,
                requested_cny=amount,
                granted_cny=give,
            )
            (funded if give > 0 else unfunded).append(row)
        reports.append(
            FundReport(
                fund_id=fid,
                budget_cny=budget,
                committed_cny=budget - remaining,
                remaining_cny=remaining,
                exhausted=remaining == 0,
                funded=funded,
                unfunded=unfunded,
                pending_unknown_cny=pending[fid],
            )
        )
    return reports
