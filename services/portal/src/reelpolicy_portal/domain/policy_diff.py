"""What changed between two versions of a policy, in plain words.

Each change is a message id (English, with ``%(name)s`` placeholders, translated by
the catalogs) and its values (amounts as numbers, for the page to write as its locale
does); the comparison is of the documents ingest stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reelpolicy_portal.domain.messages import N_


@dataclass(frozen=True)
class Change:
    message: str
    values: dict[str, Any] = field(default_factory=dict)


def _predicates(criteria: Any) -> dict[str, Any]:
    """Field → its condition, for the simple predicates anywhere in the criteria."""
    found: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if "field" in node and "op" in node:
                found[str(node["field"])] = (node.get("op"), node.get("value"))
            for key in ("all", "any", "not"):
                if key in node:
                    walk(node[key])

    walk(criteria)
    return found


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return "—" if value is None else str(value)


def describe_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Change]:
    if old is None:
        return [Change(N_("First version published."))]
    changes: list[Change] = []
    if old.get("title") != new.get("title"):
        changes.append(Change(N_("The title changed."), {}))
    old_eff, new_eff = old.get("effective") or {}, new.get("effective") or {}
    if old_eff.get("from") != new_eff.get("from"):
        changes.append(
            Change(
                N_("In force from %(new)s (was %(old)s)."),
                {"old": _text(old_eff.get("from")), "new": _text(new_eff.get("from"))},
            )
        )
    if old_eff.get("to") != new_eff.get("to"):
        if new_eff.get("to") is None:
            changes.append(Change(N_("The end date %(old)s was removed."), {"old": old_eff["to"]}))
        else:
            changes.append(
                Change(
                    N_("Applications close on %(new)s (was %(old)s)."),
                    {"old": _text(old_eff.get("to")), "new": _text(new_eff.get("to"))},
                )
            )
    old_benefits = {b["id"]: b for b in old.get("benefits") or []}
    new_benefits = {b["id"]: b for b in new.get("benefits") or []}
    for benefit_id in sorted(new_benefits.keys() - old_benefits.keys()):
        changes.append(
            Change(N_("New benefit: %(kind)s."), {"kind": new_benefits[benefit_id]["kind"]})
        )
    for benefit_id in sorted(old_benefits.keys() - new_benefits.keys()):
        changes.append(
            Change(N_("Benefit removed: %(kind)s."), {"kind": old_benefits[benefit_id]["kind"]})
        )
    for benefit_id in sorted(old_benefits.keys() & new_benefits.keys()):
        before, after = old_benefits[benefit_id], new_benefits[benefit_id]
        if before.get("max_amount_cny") != after.get("max_amount_cny"):
            changes.append(
                Change(
                    N_("The cap of %(kind)s is now %(new)s yuan (was %(old)s)."),
                    {
                        "kind": after["kind"],
                        "old": before.get("max_amount_cny"),
                        "new": after.get("max_amount_cny"),
                    },
                )
            )
        elif before != after:
            changes.append(Change(N_("The terms of %(kind)s changed."), {"kind": after["kind"]}))
    old_preds, new_preds = _predicates(old.get("criteria")), _predicates(new.get("criteria"))
    for name in sorted(new_preds.keys() - old_preds.keys()):
        changes.append(Change(N_("New condition on %(field)s."), {"field": name}))
    for name in sorted(old_preds.keys() - new_preds.keys()):
        changes.append(Change(N_("Condition on %(field)s removed."), {"field": name}))
    for name in sorted(old_preds.keys() & new_preds.keys()):
        if old_preds[name] != new_preds[name]:
            changes.append(
                Change(
                    N_("The condition on %(field)s is now %(new)s (was %(old)s)."),
                    {
                        "field": name,
                        "old": _text(old_preds[name][1]),
                        "new": _text(new_preds[name][1]),
                    },
                )
            )
    if old.get("criteria") != new.get("criteria") and old_preds == new_preds:
        changes.append(Change(N_("The way the conditions combine changed.")))
    for key, message in (
        ("sources", N_("The sources changed.")),
        ("issuer", N_("The issuer changed.")),
        ("constraints", N_("The limits (caps, budgets, one-or-the-other) changed.")),
        ("notes", N_("The notes changed.")),
    ):
        if old.get(key) != new.get(key):
            changes.append(Change(message))
    return changes or [Change(N_("No change in substance."))]
