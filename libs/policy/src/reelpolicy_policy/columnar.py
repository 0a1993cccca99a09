"""The columnar evaluator: the same semantics as :mod:`evaluate`, as polars expressions.

Polars' ``&`` / ``|`` / ``~`` on nullable booleans are Kleene logic, and comparisons
with null give null, so unknown is simply null. Output (:class:`ColumnarResult`): one row
per subject; per policy ``<id>:status`` (``UInt8`` code into :data:`STATUS_NAMES`),
``<id>:amount`` (``Int64``, null = none) and ``<id>:missing`` (``UInt64`` bitmask over
``ColumnarResult.missing_order[<id>]``; non-zero only for ``unknown``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import reduce
from operator import or_

import polars as pl

from reelpolicy_policy.criteria import All, AnyOf, Node, Not, Pred, predicates
from reelpolicy_policy.evaluate import in_force
from reelpolicy_policy.fields import FIELDS, FieldType
from reelpolicy_policy.frame import frame_schema, frame_subject_type
from reelpolicy_policy.model import MONEY_FROM_CAP, Benefit, Policy

STATUS_NAMES = ("ineligible", "unknown", "eligible")
INELIGIBLE, UNKNOWN, ELIGIBLE = 0, 1, 2
AGE = "enterprise.age_days"
ENUM_DTYPES = {k: v for k, v in frame_schema("production").items() if isinstance(v, pl.Enum)}


def _within(e: pl.Expr, prefixes: Sequence[str]) -> pl.Expr:
    out: pl.Expr = reduce(
        lambda a, b: a | b,
        [(e // 10 ** (6 - len(p))) == int(p) for p in prefixes],
    )
    return out


def _lit(path: str, v: object) -> object:
    t = FIELDS[path].type
    return int(str(v)) if t is FieldType.region else v


def pred_expr(p: Pred) -> pl.Expr:
    c = pl.col(p.field)
    op, v = p.op, p.value
    if op == "exists":
        return c.is_not_null()
    if op in ("eq", "ne", "gt", "gte", "lt", "lte"):
        lit = pl.lit(_lit(p.field, v))
        return {
            "eq": c == lit,
            "ne": c != lit,
            "gt": c > lit,
            "gte": c >= lit,
            "lt": c < lit,
            "lte": c <= lit,
        }[op]
    if op in ("in", "not_in"):
        vals = [_lit(p.field, x) for x in v]
        e = c.is_in(pl.Series(vals, dtype=ENUM_DTYPES.get(p.field)).implode())
        return e if op == "in" else ~e
    if op == "between":
        return (c >= pl.lit(v[0])) & (c <= pl.lit(v[1]))
    if op == "within":
        return _within(c, v)
    if op == "any_within":
        inner = c.list.eval(_within(pl.element(), v)).list.any()
        return pl.when(c.is_null()).then(pl.lit(None, pl.Boolean)).otherwise(inner)
    vocab = FIELDS[p.field].vocabulary
    mask = reduce(or_, (1 << vocab.index(x) for x in v), 0)  # a value listed twice: one bit
    if op == "contains_any":
        return (c & mask) != 0
    if op == "contains_all":
        return (c & mask) == mask
    raise ValueError(f"unknown operator {op}")  # pragma: no cover


def node_expr(node: Node) -> pl.Expr:
    if isinstance(node, Pred):
        return pred_expr(node)
    if isinstance(node, Not):
        return ~node_expr(node.child)
    kids = [node_expr(c) for c in node.children]
    if isinstance(node, All):
        return reduce(lambda a, b: a & b, kids)
    assert isinstance(node, AnyOf)
    return reduce(lambda a, b: a | b, kids)


def _capped(e: pl.Expr, cap: int | None) -> pl.Expr:
    return e if cap is None else e.clip(upper_bound=cap)


def _grant_sum(b: Benefit) -> pl.Expr:
    assert b.match is not None
    g = pl.element()
    conds = []
    if b.match.issuer_levels:
        conds.append(
            g.struct.field("issuer_level").is_in([lv.value for lv in b.match.issuer_levels])
        )
    if b.match.issuer_region_prefixes:
        conds.append(_within(g.struct.field("issuer_region_code"), b.match.issuer_region_prefixes))
    cond = reduce(lambda a, c: a | c, conds) if conds else pl.lit(False)
    amounts = g.struct.field("amount_cny").filter(cond.fill_null(False))
    return pl.col("production.grants").list.eval(amounts).list.sum()


def amount_exprs(policy: Policy) -> tuple[pl.Expr, pl.Expr]:
    """(total amount after exclusivity and max_total, any benefit input missing)."""
    nul = pl.lit(None, pl.Int64)
    amounts: dict[str, pl.Expr] = {}
    static_null: set[str] = set()
    missing: list[pl.Expr] = []
    for b in policy.benefits:
        bp = round((b.percent or 100) * 100)
        cap = b.max_amount_cny
        capv = nul if cap is None else pl.lit(cap, pl.Int64)
        if b.basis in MONEY_FROM_CAP or b.basis == "non_monetary":
            e = capv
            if cap is None:
                static_null.add(b.id)
        elif b.basis == "percentage_of_benefit":
            ref = b.of_benefit or ""
            e = _capped(amounts[ref] * bp // 10000, cap)
            if ref in static_null:
                e = nul
                static_null.add(b.id)
        else:
            src = pl.col(b.of_field or "") if b.basis == "percentage_of_field" else _grant_sum(b)
            col = b.of_field if b.basis == "percentage_of_field" else "production.grants"
            missing.append(pl.col(col or "").is_null())
            e = pl.when(pl.col(col or "").is_null()).then(capv)
            e = e.otherwise(_capped(src * bp // 10000, cap))
        amounts[b.id] = e
    kept = {b.id: amounts[b.id] for b in policy.benefits}
    for group in policy.constraints.exclusive:
        filled = [amounts[i].fill_null(-1) for i in group]
        for i, bid in enumerate(group):
            conds = [filled[i] > filled[j] for j in range(i)]
            conds += [filled[i] >= filled[j] for j in range(i + 1, len(group))]
            kept[bid] = pl.when(reduce(lambda a, c: a & c, conds)).then(amounts[bid]).otherwise(nul)
    live = [e for bid, e in kept.items() if bid not in static_null]
    if live:
        total = pl.when(pl.any_horizontal([e.is_not_null() for e in live]))
        total_e = _capped(
            total.then(pl.sum_horizontal(live)).otherwise(nul), policy.constraints.max_total_cny
        )
    else:
        total_e = nul
    miss = reduce(lambda a, c: a | c, missing) if missing else pl.lit(False)
    return total_e, miss


def missing_order(policy: Policy) -> tuple[str, ...]:
    """The fields whose nullness the ``missing`` bitmask reports, in bit order."""
    used = {p.field for p in predicates(policy.criteria) if p.op != "exists"}
    for b in policy.benefits:
        if b.basis == "percentage_of_field" and b.of_field:
            used.add(b.of_field)
        if b.basis == "matching":
            used.add("production.grants")
    return tuple(sorted(used))


def policy_exprs(policy: Policy, today: date) -> list[pl.Expr]:
    pid = policy.id
    if not in_force(policy, today):
        return [
            pl.lit(INELIGIBLE, pl.UInt8).alias(f"{pid}:status"),
            pl.lit(None, pl.Int64).alias(f"{pid}:amount"),
            pl.lit(0, pl.UInt64).alias(f"{pid}:missing"),
        ]
    crit = node_expr(policy.criteria)
    total, miss_input = amount_exprs(policy)
    status = (
        pl.when(~crit)
        .then(pl.lit(INELIGIBLE, pl.UInt8))
        .when(crit.is_null() | miss_input)
        .then(pl.lit(UNKNOWN, pl.UInt8))
        .otherwise(pl.lit(ELIGIBLE, pl.UInt8))
    )
    bits = [
        pl.col(f).is_null().cast(pl.UInt64) * (1 << i) for i, f in enumerate(missing_order(policy))
    ]
    mask = pl.sum_horizontal(bits) if bits else pl.lit(0, pl.UInt64)
    return [
        status.alias(f"{pid}:status"),
        pl.when(status == INELIGIBLE)
        .then(pl.lit(None, pl.Int64))
        .otherwise(total)
        .alias(f"{pid}:amount"),
        pl.when(status == UNKNOWN)
        .then(mask)
        .otherwise(pl.lit(0, pl.UInt64))
        .alias(f"{pid}:missing"),
    ]


@dataclass(frozen=True)
class ColumnarResult:
    frame: pl.DataFrame
    policies: tuple[Policy, ...]

    def missing_order(self, policy_id: str) -> tuple[str, ...]:
        return missing_order(next(p for p in self.policies if p.id == policy_id))

    def long(self) -> pl.DataFrame:
        """One row per (subject, policy): status name, amount_cny, missing_fields list."""
        parts = []
        for p in self.policies:
            order = missing_order(p)
            m = pl.col(f"{p.id}:missing")
            names = [
                pl.when((m & (1 << i)) != 0).then(pl.lit(f)).otherwise(pl.lit(None, pl.String))
                for i, f in enumerate(order)
            ]
            missing = (
                pl.concat_list(names).list.drop_nulls() if names else pl.lit([], pl.List(pl.String))
            )
            parts.append(
                self.frame.select(
                    pl.col("subject_id"),
                    pl.lit(p.id).alias("policy_id"),
                    pl.col(f"{p.id}:status")
                    .replace_strict(dict(enumerate(STATUS_NAMES)), return_dtype=pl.String)
                    .alias("status"),
                    pl.col(f"{p.id}:amount").alias("amount_cny"),
                    missing.alias("missing_fields"),
                )
            )
        if not parts:
            return pl.DataFrame(
                schema={
                    "subject_id": pl.String,
                    "policy_id": pl.String,
                    "status": pl.String,
                    "amount_cny": pl.Int64,
                    "missing_fields": pl.List(pl.String),
                }
            )
        return pl.concat(parts)


def evaluate_columnar(
    policies: Sequence[Policy], frame: pl.DataFrame, *, today: date
) -> ColumnarResult:
    """Evaluate ``policies`` over a frame built per :mod:`reelpolicy_policy.frame`.

    Policies for the other subject type than the frame's are skipped.
    """
    kind = frame_subject_type(frame)
    chosen = tuple(p for p in policies if p.subject == kind)
    lf = frame.lazy()
    if any(AGE in p.fields for p in chosen):
        age = (pl.lit(today) - pl.col("enterprise.established_on")).dt.total_days()
        lf = lf.with_columns(age.cast(pl.Int64).alias(AGE))
    exprs = [e for p in chosen for e in policy_exprs(p, today)]
    out = lf.select(pl.col("subject_id"), *exprs).collect()
    return ColumnarResult(frame=out, policies=chosen)
