"""Translation of a policy to one CEL expression with the same three-valued semantics.

The expression reads ``s`` (a map ``field path -> value``, see :func:`cel_context`) and
``today`` (days since 1970-01-01) and returns ``[status, amount]`` with status
``0`` ineligible / ``1`` unknown / ``2`` eligible (index into ``STATUS_NAMES``).
CEL has no Kleene logic over null, so truth values are integers (0 false, 1 unknown,
2 true): ``all`` is the minimum, ``any`` the maximum, ``not`` is ``2 - x``; a list is
bound once with the ``[[...]].map(l, ...)[0]`` idiom. Matching needs one helper
function, ``sum_ints(list)``, passed in the CEL context's functions.
This module only produces strings; it does not import the ``cel`` package.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from reelpolicy_policy.criteria import All, AnyOf, Node, Not, Pred
from reelpolicy_policy.fields import FIELDS, FieldType
from reelpolicy_policy.model import MONEY_FROM_CAP, Policy

EPOCH = date(1970, 1, 1)
AGE = "enterprise.age_days"


def _days(d: date) -> int:
    return (d - EPOCH).days


def _lit(path: str, v: Any) -> str:
    t = FIELDS[path].type
    if t is FieldType.date:
        return str(_days(v))
    if t is FieldType.float:
        return repr(float(v))
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


def _var(path: str) -> str:
    if path == AGE:
        return '(s["enterprise.established_on"] == null ? null : today - s["enterprise.established_on"])'
    return f"s[{json.dumps(path)}]"


def _starts(x: str, prefixes: tuple[str, ...]) -> str:
    return "(" + " || ".join(f"{x}.startsWith({json.dumps(p)})" for p in prefixes) + ")"


def _cond(p: Pred, x: str) -> str:
    op, v = p.op, p.value
    simple = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    if op in simple:
        return f"{x} {simple[op]} {_lit(p.field, v)}"
    if op in ("in", "not_in"):
        lst = "[" + ", ".join(_lit(p.field, i) for i in v) + "]"
        return f"{x} in {lst}" if op == "in" else f"!({x} in {lst})"
    if op == "between":
        return f"{x} >= {_lit(p.field, v[0])} && {x} <= {_lit(p.field, v[1])}"
    if op == "within":
        return _starts(x, v)
    if op == "any_within":
        return f"{x}.exists(c, {_starts('c', v)})"
    lst = "[" + ", ".join(json.dumps(i) for i in v) + "]"
    if op == "contains_any":
        return f"{x}.exists(e, e in {lst})"
    if op == "contains_all":
        return f"{lst}.all(e, e in {x})"
    raise ValueError(op)  # pragma: no cover


def criteria_cel(node: Node) -> str:
    """CEL integer truth value (0/1/2) of a criteria node."""
    if isinstance(node, Pred):
        x = _var(node.field)
        if node.op == "exists":
            return f"({x} != null ? 2 : 0)"
        return f"({x} == null ? 1 : ({_cond(node, x)} ? 2 : 0))"
    if isinstance(node, Not):
        return f"(2 - {criteria_cel(node.child)})"
    kids = ", ".join(criteria_cel(c) for c in node.children)
    if isinstance(node, All):
        body = "l.exists(v, v == 0) ? 0 : (l.exists(v, v == 1) ? 1 : 2)"
    else:
        assert isinstance(node, AnyOf)
        body = "l.exists(v, v == 2) ? 2 : (l.exists(v, v == 1) ? 1 : 0)"
    return f"[[{kids}]].map(l, {body})[0]"


def _cap(e: str, cap: int | None) -> str:
    if cap is None:
        return e
    return f"[{e}].map(q, q > {cap} ? {cap} : q)[0]"


def _amounts(policy: Policy) -> tuple[list[str], list[str]]:
    """CEL amount per benefit (int or null) and the null-tests of benefit inputs."""
    out: dict[str, str] = {}
    missing: list[str] = []
    for b in policy.benefits:
        bp = round((b.percent or 100) * 100)
        cap = "null" if b.max_amount_cny is None else str(b.max_amount_cny)
        if b.basis in MONEY_FROM_CAP or b.basis == "non_monetary":
            e = cap
        elif b.basis == "percentage_of_benefit":
            base = out[b.of_benefit or ""]
            e = f"[{base}].map(r, r == null ? null : {_cap(f'r * {bp} / 10000', b.max_amount_cny)})[0]"
        elif b.basis == "percentage_of_field":
            x = _var(b.of_field or "")
            missing.append(f"{x} == null")
            e = f"({x} == null ? {cap} : {_cap(f'{x} * {bp} / 10000', b.max_amount_cny)})"
        else:
            assert b.match is not None
            x = _var("production.grants")
            missing.append(f"{x} == null")
            levels = json.dumps([lv.value for lv in b.match.issuer_levels])
            conds = [f"g.level in {levels}"]
            if b.match.issuer_region_prefixes:
                conds.append(
                    f"(g.region != null && {_starts('g.region', tuple(b.match.issuer_region_prefixes))})"
                )
            matched = f"sum_ints({x}.filter(g, {' || '.join(conds)}).map(g, g.amount))"
            e = f"({x} == null ? {cap} : {_cap(f'{matched} * {bp} / 10000', b.max_amount_cny)})"
        out[b.id] = e
    return list(out.values()), missing


def _total(policy: Policy) -> str:
    exprs, _ = _amounts(policy)
    ids = [b.id for b in policy.benefits]
    kept = [f"a[{i}]" for i in range(len(ids))]
    for group in policy.constraints.exclusive:
        idx = [ids.index(g) for g in group]
        filled = [f"(a[{i}] == null ? -1 : a[{i}])" for i in idx]
        for n, i in enumerate(idx):
            conds = [f"{filled[n]} > {filled[m]}" for m in range(n)]
            conds += [f"{filled[n]} >= {filled[m]}" for m in range(n + 1, len(idx))]
            kept[i] = f"({' && '.join(conds)} ? a[{i}] : null)"
    total = (
        f"[[{', '.join(kept)}]].map(k, k.exists(x, x != null) ? "
        "sum_ints(k.filter(x, x != null)) : null)[0]"
    )
    cap = policy.constraints.max_total_cny
    if cap is not None:
        total = f"[{total}].map(t, t == null ? null : (t > {cap} ? {cap} : t))[0]"
    return f"[[{', '.join(exprs)}]].map(a, {total})[0]"


def to_cel(policy: Policy) -> str:
    """One CEL expression returning ``[status, amount]`` for this policy."""
    eff = policy.document.effective
    off = f"today < {_days(eff.from_)}"
    if eff.to is not None:
        off += f" || today > {_days(eff.to)}"
    _, missing = _amounts(policy)
    miss = " || ".join(missing) or "false"
    body = (
        f"[[{criteria_cel(policy.criteria)}]].map(c, c[0] == 0 ? [0, null] : "
        f"[(c[0] == 1 || {miss}) ? 1 : 2, {_total(policy)}])[0]"
    )
    return f"({off}) ? [0, null] : {body}"


def cel_value(path: str, v: Any) -> Any:
    if v is None:
        return None
    t = FIELDS[path].type
    if t is FieldType.date:
        return _days(v)
    if t is FieldType.enum_set:
        return sorted(v)
    if t is FieldType.region_list:
        return list(v)
    if t is FieldType.grants:
        return [{"level": lv, "region": reg, "amount": amt} for lv, reg, amt in v]
    return v


def cel_context(values: dict[str, Any], today: date) -> dict[str, Any]:
    """CEL variables for flattened subject values (``flatten_subject`` output)."""
    s = {k: cel_value(k, v) for k, v in values.items() if k in FIELDS and k != AGE}
    return {"s": s, "today": _days(today)}
