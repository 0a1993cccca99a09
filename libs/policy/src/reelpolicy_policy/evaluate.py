"""The per-subject evaluator: three-valued (Kleene) criteria, benefit arithmetic, trace.

Semantics (shared with :mod:`reelpolicy_policy.columnar` and the CEL translation):

* A policy not in force on ``today`` is ``ineligible``.
* A predicate on an unknown (``None``) field is unknown, except ``exists``.
  ``all`` is false if any child is false, else unknown if any is unknown; ``any`` is
  true if any is true, else unknown if any is unknown; ``not`` flips (unknown stays).
* Criteria false -> ``ineligible`` (amount ``None``). Criteria unknown, or true but a
  benefit's input field (``of_field``, grants for matching) unknown -> ``unknown``;
  otherwise ``eligible``. For ``unknown`` the amount is the upper bound assuming the
  unknowns turn out favourably (a benefit whose input is unknown counts at its cap).
* ``missing_fields`` (only for ``unknown``): the referenced fields that are unknown
  (fields only tested with ``exists`` are known either way).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reelpolicy_contracts.events.payloads import Status
from reelpolicy_policy.criteria import All, AnyOf, Node, Not, Pred, predicates
from reelpolicy_policy.fields import (
    Subject,
    age_days,
    flatten_subject,
    region_within,
)
from reelpolicy_policy.model import MONEY_FROM_CAP, Benefit, GrantMatch, Policy

Tri = bool | None


class Result(BaseModel):
    """One (subject, policy) verdict."""

    model_config = ConfigDict(frozen=True)

    policy_id: str
    policy_version: int | None
    subject_id: str
    subject_type: Literal["enterprise", "production"]
    status: Status
    amount_cny: int | None
    missing_fields: list[str] = Field(default_factory=list)
    explanation: dict[str, Any] = Field(default_factory=dict)


def in_force(policy: Policy, today: date) -> bool:
    eff = policy.document.effective
    return eff.from_ <= today and (eff.to is None or today <= eff.to)


def pred_value(p: Pred, v: Any) -> Tri:
    """Evaluate one predicate on a flattened value (``None`` = unknown)."""
    if p.op == "exists":
        return v is not None
    if v is None:
        return None
    op, x = p.op, p.value
    if op == "eq":
        return bool(v == x)
    if op == "ne":
        return bool(v != x)
    if op == "in":
        return v in x
    if op == "not_in":
        return v not in x
    if op == "gt":
        return bool(v > x)
    if op == "gte":
        return bool(v >= x)
    if op == "lt":
        return bool(v < x)
    if op == "lte":
        return bool(v <= x)
    if op == "between":
        return bool(x[0] <= v <= x[1])
    if op == "within":
        return any(region_within(v, pre) for pre in x)
    if op == "any_within":
        return any(region_within(code, pre) for code in v for pre in x)
    if op == "contains_any":
        return not frozenset(v).isdisjoint(x)
    if op == "contains_all":
        return frozenset(x) <= frozenset(v)
    raise ValueError(f"unknown operator {op}")  # pragma: no cover - parse rejects it


def _jsonable(v: Any) -> Any:
    if isinstance(v, frozenset | set):
        return sorted(v)
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, date):
        return v.isoformat()
    return v


def _word(t: Tri) -> str:
    return "unknown" if t is None else ("pass" if t else "fail")


def eval_node(node: Node, values: dict[str, Any]) -> tuple[Tri, dict[str, Any]]:
    """Kleene evaluation of a criteria node with its explanation trace."""
    if isinstance(node, Pred):
        actual = values.get(node.field)
        r = pred_value(node, actual)
        return r, {
            "field": node.field,
            "op": node.op,
            "expected": node.value_json,
            "actual": _jsonable(actual),
            "result": _word(r),
        }
    if isinstance(node, Not):
        r, t = eval_node(node.child, values)
        r = None if r is None else not r
        return r, {"not": t, "result": _word(r)}
    results = [eval_node(c, values) for c in node.children]
    rs = [r for r, _ in results]
    key = "all" if isinstance(node, All) else "any"
    if isinstance(node, All):
        out: Tri = False if False in rs else (None if None in rs else True)
    else:
        assert isinstance(node, AnyOf)
        out = True if True in rs else (None if None in rs else False)
    return out, {key: [t for _, t in results], "result": _word(out)}


def criteria_value(node: Node, values: dict[str, Any]) -> Tri:
    """The Kleene value :func:`eval_node` gives ``node``, without building its trace."""
    if isinstance(node, Pred):
        return pred_value(node, values.get(node.field))
    if isinstance(node, Not):
        r = criteria_value(node.child, values)
        return None if r is None else not r
    decisive = isinstance(node, AnyOf)  # the child value that decides the node
    unknown = False
    for child in node.children:
        r = criteria_value(child, values)
        if r is decisive:
            return decisive
        unknown = unknown or r is None
    return None if unknown else not decisive


def may_apply(policy: Policy, values: dict[str, Any], *, today: date) -> bool:
    """False exactly when :func:`evaluate_values` would answer ``ineligible``: the policy
    is not in force, or its criteria are false. Cheap: no trace, no result."""
    return in_force(policy, today) and criteria_value(policy.criteria, values) is not False


def _or_minus_one(v: int | None) -> int:
    return -1 if v is None else v


def _cap(amount: int, cap: int | None) -> int:
    return amount if cap is None else min(amount, cap)


def grant_matches(m: GrantMatch, level: str, region: str | None) -> bool:
    if level in m.issuer_levels:
        return True
    return region is not None and any(region.startswith(p) for p in m.issuer_region_prefixes)


def benefit_amount(
    b: Benefit, values: dict[str, Any], earlier: dict[str, int | None]
) -> tuple[int | None, str | None, dict[str, Any]]:
    """(amount, missing input field or None, trace) for one benefit, before exclusivity."""
    bp = round((b.percent or 100) * 100)  # basis points, integer arithmetic
    trace: dict[str, Any] = {"id": b.id, "kind": b.kind, "basis": b.basis}
    trace["cap"] = b.max_amount_cny
    if b.basis in MONEY_FROM_CAP or b.basis == "non_monetary":
        trace["amount"] = b.max_amount_cny
        return b.max_amount_cny, None, trace
    trace["percent"] = bp / 100
    base: int | None
    if b.basis == "percentage_of_benefit":
        base = earlier.get(b.of_benefit or "")
        trace["of_benefit"] = b.of_benefit
        trace["base"] = base
        amount = None if base is None else _cap(base * bp // 10000, b.max_amount_cny)
        trace["amount"] = amount
        return amount, None, trace
    if b.basis == "percentage_of_field":
        field = b.of_field or ""
        base = values.get(field)
        trace["of_field"] = field
    else:  # matching
        field = "production.grants"
        grants = values.get(field)
        assert b.match is not None
        base = None
        if grants is not None:
            base = sum(a for lvl, reg, a in grants if grant_matches(b.match, lvl, reg))
        trace["matched_grants_cny"] = base
    trace["base"] = base
    if base is None:
        trace["amount"] = b.max_amount_cny
        trace["missing"] = field
        return b.max_amount_cny, field, trace
    amount = _cap(base * bp // 10000, b.max_amount_cny)
    trace["amount"] = amount
    return amount, None, trace


def policy_amount(
    policy: Policy, values: dict[str, Any]
) -> tuple[int | None, list[str], dict[str, Any]]:
    """Total amount after exclusive choices and ``max_total_cny``; missing inputs; trace."""
    amounts: dict[str, int | None] = {}
    missing: list[str] = []
    traces = []
    for b in policy.benefits:
        amt, miss, t = benefit_amount(b, values, amounts)
        amounts[b.id] = amt
        traces.append(t)
        if miss:
            missing.append(miss)
    dropped: set[str] = set()
    choices = []
    for group in policy.constraints.exclusive:
        best = max(group, key=lambda bid: _or_minus_one(amounts[bid]))
        dropped.update(bid for bid in group if bid != best)
        choices.append({"group": list(group), "chosen": best})
    kept = [amounts[b.id] for b in policy.benefits if b.id not in dropped]
    known = [a for a in kept if a is not None]
    total = sum(known) if known else None
    cap = policy.constraints.max_total_cny
    trace: dict[str, Any] = {"benefits": traces, "exclusive": choices, "sum": total}
    if total is not None and cap is not None:
        total = min(total, cap)
        trace["max_total_cny"] = cap
    trace["amount_cny"] = total
    return total, missing, trace


def subject_values(subject: Subject, today: date) -> dict[str, Any]:
    values = flatten_subject(subject)
    values["enterprise.age_days"] = age_days(values.get("enterprise.established_on"), today)
    return values


def evaluate_values(
    policy: Policy, values: dict[str, Any], *, subject_id: str, today: date
) -> Result:
    """Evaluate on already flattened values (see :func:`subject_values`)."""
    head = {"policy_id": policy.id, "policy_version": policy.version, "subject_id": subject_id}
    expl: dict[str, Any] = {"policy": policy.id, "today": today.isoformat()}
    if not in_force(policy, today):
        expl["in_force"] = False
        return Result(
            **head,
            subject_type=policy.subject,
            status="ineligible",
            amount_cny=None,
            explanation=expl,
        )
    crit, ctrace = eval_node(policy.criteria, values)
    expl["in_force"] = True
    expl["criteria"] = ctrace
    if crit is False:
        return Result(
            **head,
            subject_type=policy.subject,
            status="ineligible",
            amount_cny=None,
            explanation=expl,
        )
    amount, missing_inputs, atrace = policy_amount(policy, values)
    expl["amount"] = atrace
    status: Status = "eligible" if crit is True and not missing_inputs else "unknown"
    missing: list[str] = []
    if status == "unknown":
        used = {p.field for p in predicates(policy.criteria) if p.op != "exists"}
        used.update(missing_inputs)
        missing = sorted(f for f in used if values.get(f) is None)
        expl["hint"] = "Provide " + ", ".join(missing) + " to decide this policy."
    return Result(
        **head,
        subject_type=policy.subject,
        status=status,
        amount_cny=amount,
        missing_fields=missing,
        explanation=expl,
    )


def evaluate(policy: Policy, subject: Subject, *, today: date) -> Result:
    """Evaluate one policy for one subject (see the module docstring for the semantics)."""
    if subject.type != policy.subject:
        raise ValueError(f"policy {policy.id} is for a {policy.subject}, not a {subject.type}")
    return evaluate_values(
        policy, subject_values(subject, today), subject_id=subject.subject_id, today=today
    )
