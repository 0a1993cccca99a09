"""Cross-policy constraints for one subject's results: stacking caps, then fund draws.

Exclusive benefit groups are applied inside a policy by the engine. Stacking uses
the engine's :func:`apply_stacking`. Funds: in the per-subject path a subject draws on
what the fund has left (``fund_remaining``: budget minus what other subjects hold);
a result the fund cannot cover stays ``eligible`` with the granted amount (possibly 0)
and says so in its explanation, so an exhausted fund is visible, never silent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from reelpolicy_policy import Policy, Result, apply_stacking


def fund_of(policy: Policy) -> tuple[str, int] | None:
    fund = policy.constraints.fund
    return None if fund is None else (fund.id, fund.budget_cny)


def fund_budgets(policies: Iterable[Policy]) -> dict[str, int]:
    """fund id -> budget (the smallest one declared, as the engine does)."""
    budgets: dict[str, int] = {}
    for p in policies:
        f = fund_of(p)
        if f is not None:
            budgets[f[0]] = min(budgets.get(f[0], f[1]), f[1])
    return budgets


def fund_note(
    *, fund_id: str, budget: int, requested: int, granted: int, remaining: int
) -> dict[str, object]:
    return {
        "id": fund_id,
        "budget_cny": budget,
        "requested_cny": requested,
        "granted_cny": granted,
        "exhausted": granted < requested,
        "remaining_cny": remaining,
    }


def apply_subject_constraints(
    results: Sequence[Result],
    *,
    policies: Sequence[Policy],
    fund_remaining: dict[str, int],
) -> list[Result]:
    """Stacking caps across ``policies``, then draws on each fund's remaining budget.

    ``fund_remaining`` (fund id -> yuan left) is updated in place, so several subjects
    can draw one after the other.
    """
    stacked = apply_stacking(results, policies=policies)
    by_id = {p.id: p for p in policies}
    budgets = fund_budgets(policies)
    remaining = fund_remaining
    out: list[Result] = []
    for r in stacked:
        policy = by_id.get(r.policy_id)
        fund = fund_of(policy) if policy else None
        if fund is None or r.status != "eligible" or not r.amount_cny:
            out.append(r)
            continue
        fid = fund[0]
        left = remaining.get(fid, budgets[fid])
        give = max(0, min(r.amount_cny, left))
        remaining[fid] = left - give
        expl = dict(r.explanation)
        expl["fund"] = fund_note(
            fund_id=fid,
            budget=budgets[fid],
            requested=r.amount_cny,
            granted=give,
            remaining=remaining[fid],
        )
        out.append(r.model_copy(update={"amount_cny": give, "explanation": expl}))
    return out


def fund_holdings(
    amounts: Iterable[tuple[str, str, int | None]], *, fund_by_policy: Mapping[str, str]
) -> dict[str, int]:
    """fund id -> yuan held, from (policy id, status, amount) of stored or new results."""
    held: dict[str, int] = {}
    for policy_id, status, amount in amounts:
        fid = fund_by_policy.get(policy_id)
        if fid is not None and status == "eligible" and amount:
            held[fid] = held.get(fid, 0) + amount
    return held


class FundLedger:
    """What each fund holds while subjects are re-evaluated one after the other.

    Starts from everything the stored results hold. A subject draws on the budget
    less what *others* hold (``remaining_for`` its own holdings), then ``replace``
    swaps its old holdings for the new ones: exactly what re-evaluating the subjects
    in separate steps of one transaction would see, without a query per step.
    """

    def __init__(self, *, budgets: Mapping[str, int], held: Mapping[str, int]) -> None:
        self._budgets = dict(budgets)
        self._held = dict(held)

    def remaining_for(self, own: Mapping[str, int]) -> dict[str, int]:
        return {
            fid: max(0, budget - (self._held.get(fid, 0) - own.get(fid, 0)))
            for fid, budget in self._budgets.items()
        }

    def replace(self, *, before: Mapping[str, int], after: Mapping[str, int]) -> None:
        for fid in before.keys() | after.keys():
            self._held[fid] = self._held.get(fid, 0) - before.get(fid, 0) + after.get(fid, 0)


def related_policies(seeds: Iterable[str], policies: Sequence[Policy]) -> set[str]:
    """``seeds`` plus every policy sharing a stacking group or a fund with them (transitively).

    Their results constrain each other, so a bulk run re-evaluates them together.
    """

    def links(p: Policy) -> set[str]:
        c = p.constraints
        out = set()
        if c.stacking_group is not None:
            out.add("stack:" + c.stacking_group.id)
        if c.fund is not None:
            out.add("fund:" + c.fund.id)
        return out

    chosen = set(seeds)
    tags = set().union(*(links(p) for p in policies if p.id in chosen)) if chosen else set()
    grew = True
    while grew:
        grew = False
        for p in policies:
            if p.id not in chosen and links(p) & tags:
                chosen.add(p.id)
                tags |= links(p)
                grew = True
    return chosen
