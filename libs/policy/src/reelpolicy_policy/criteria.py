"""The criteria tree: ``all`` / ``any`` / ``not`` over typed field predicates.

``parse_criteria`` checks every node against :mod:`reelpolicy_policy.fields` and
reports problems as ``{path, message}`` with JSON paths (``$.criteria.all[1].field``);
nodes are frozen dataclasses with a canonical ``to_dict`` form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from reelpolicy_contracts.storable import PG_BIGINT_MAX, PG_BIGINT_MIN
from reelpolicy_policy.fields import OPERATORS, FieldSpec, FieldType, SubjectType, fields_for

PREFIX_RE = re.compile(r"^\d{2}(\d{2}){0,2}$")
REGION_RE = re.compile(r"^[1-9]\d{5}$")
ORDERED = frozenset({"gt", "gte", "lt", "lte"})
LIST_OPS = frozenset({"in", "not_in", "contains_any", "contains_all"})


@dataclass(frozen=True)
class All:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Pred:
    field: str
    op: str
    value: Any = None  # normalised: scalar, tuple of scalars, or (lo, hi); dates as date

    @cached_property
    def value_json(self) -> Any:
        """``value`` in JSON form, as explanation traces show it (computed once)."""
        return _json(self.value)


Node = All | AnyOf | Not | Pred
Errors = list[dict[str, str]]


def _json(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, tuple):
        return [_json(x) for x in v]
    return v


def node_to_dict(node: Node) -> dict[str, Any]:
    """The canonical JSON form of a node."""
    if isinstance(node, All):
        return {"all": [node_to_dict(c) for c in node.children]}
    if isinstance(node, AnyOf):
        return {"any": [node_to_dict(c) for c in node.children]}
    if isinstance(node, Not):
        return {"not": node_to_dict(node.child)}
    out: dict[str, Any] = {"field": node.field, "op": node.op}
    if node.op != "exists":
        out["value"] = _json(node.value)
    return out


def predicates(node: Node) -> list[Pred]:
    if isinstance(node, Pred):
        return [node]
    if isinstance(node, Not):
        return predicates(node.child)
    return [p for c in node.children for p in predicates(c)]


def _scalar(spec: FieldSpec, v: Any, path: str, errors: Errors) -> Any:
    t = spec.type
    bad = None
    if t is FieldType.region:
        if not (isinstance(v, str) and REGION_RE.match(v)):
            bad = "a six-digit GB/T 2260 region code string"
    elif t in (FieldType.enum, FieldType.enum_set):
        if v not in spec.vocabulary:
            bad = f"one of {list(spec.vocabulary)}"
    elif t is FieldType.int:
        if isinstance(v, bool) or not isinstance(v, int):
            bad = "an integer"
        elif not PG_BIGINT_MIN <= v <= PG_BIGINT_MAX:  # the engine compares in 64 bits
            bad = "a 64-bit integer"
    elif t is FieldType.float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            bad = "a number"
        else:
            v = float(v)
    elif t is FieldType.bool:
        if not isinstance(v, bool):
            bad = "true or false"
    elif t is FieldType.date:
        if isinstance(v, date):
            return v
        try:
            return date.fromisoformat(v) if isinstance(v, str) and len(v) == 10 else _raise()
        except (ValueError, TypeError):
            bad = "an ISO date YYYY-MM-DD"
    if bad is not None:
        errors.append({"path": path, "message": f"expected {bad} for {spec.path}, got {v!r}"})
    return v


def _raise() -> date:
    raise ValueError


def _value(spec: FieldSpec, op: str, raw: Any, path: str, errors: Errors) -> Any:
    if op in ("within", "any_within"):
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items:
            errors.append({"path": path, "message": "expected a region prefix or a list of them"})
            return ()
        for i, p in enumerate(items):
            if not (isinstance(p, str) and PREFIX_RE.match(p)):
                errors.append(
                    {"path": f"{path}[{i}]", "message": "expected a 2, 4 or 6-digit prefix"}
                )
        return tuple(items)
    if op in LIST_OPS or op == "between":
        if not isinstance(raw, list) or not raw or (op == "between" and len(raw) != 2):
            want = "a list [min, max]" if op == "between" else "a non-empty list"
            errors.append({"path": path, "message": f"expected {want} for operator {op}"})
            return ()
        vals = tuple(_scalar(spec, x, f"{path}[{i}]", errors) for i, x in enumerate(raw))
        if op == "between":
            try:
                if vals[0] > vals[1]:
                    errors.append({"path": path, "message": "between: min must be <= max"})
            except TypeError:
                pass
        return vals
    if isinstance(raw, list):
        errors.append({"path": path, "message": f"expected a single value for operator {op}"})
        return None
    return _scalar(spec, raw, path, errors)


def parse_criteria(raw: Any, path: str, subject: SubjectType, errors: Errors) -> Node:
    """Parse one criteria node, appending ``{path, message}`` for each problem found."""
    if not isinstance(raw, dict):
        errors.append({"path": path, "message": "expected an object (all/any/not or predicate)"})
        return All(())
    keys = set(raw)
    for combinator in ("all", "any"):
        if combinator in keys:
            if keys != {combinator}:
                errors.append({"path": path, "message": f"'{combinator}' must be the only key"})
            items = raw[combinator]
            if not isinstance(items, list) or not items:
                errors.append(
                    {"path": f"{path}.{combinator}", "message": "expected a non-empty list"}
                )
                return All(())
            kids = tuple(
                parse_criteria(c, f"{path}.{combinator}[{i}]", subject, errors)
                for i, c in enumerate(items)
            )
            return All(kids) if combinator == "all" else AnyOf(kids)
    if "not" in keys:
        if keys != {"not"}:
            errors.append({"path": path, "message": "'not' must be the only key"})
        return Not(parse_criteria(raw["not"], f"{path}.not", subject, errors))
    extra = keys - {"field", "op", "value"}
    if extra or not {"field", "op"} <= keys:
        errors.append(
            {
                "path": path,
                "message": "expected {all: [...]}, {any: [...]}, {not: {...}} or "
                f"{{field, op, value}}; got keys {sorted(keys)}",
            }
        )
        return All(())
    field, op = raw["field"], raw["op"]
    spec = fields_for(subject).get(field) if isinstance(field, str) else None
    if spec is None:
        errors.append(
            {"path": f"{path}.field", "message": f"unknown field {field!r} for a {subject} policy"}
        )
        return Pred(str(field), str(op))
    allowed = OPERATORS[spec.type]
    if op not in allowed:
        errors.append(
            {
                "path": f"{path}.op",
                "message": f"operator {op!r} does not fit {spec.type.value} field {field}; "
                f"expected one of {sorted(allowed)}",
            }
        )
        return Pred(field, str(op))
    if op == "exists":
        if "value" in keys:
            errors.append({"path": f"{path}.value", "message": "'exists' takes no value"})
        return Pred(field, op)
    if "value" not in keys:
        errors.append({"path": f"{path}.value", "message": f"operator {op} needs a value"})
        return Pred(field, op)
    return Pred(field, op, _value(spec, op, raw["value"], f"{path}.value", errors))
