"""Plain-language summaries of what changed between two versions of a policy (pure)."""

from __future__ import annotations

from typing import Any

from reelpolicy_notify.domain.policies import title_of


def _cny(amount: int | None) -> str:
    return "no cap" if amount is None else f"{amount:,} CNY"


ChangeItem = tuple[str, dict[str, Any]]
"""One change between policy versions: a message key (``[change]`` in the alert message
catalogs) and its raw parameters (amounts in CNY as integers, dates as ISO strings)."""


def _moved(kind: str, old: Any, new: Any) -> ChangeItem | None:
    if old == new:
        return None
    if old is None:
        return f"{kind}_set", {"new": new}
    if new is None:
        return f"{kind}_removed", {"old": old}
    return f"{kind}_moved", {"old": old, "new": new}


def _cap_change(benefit_id: str, old: int | None, new: int | None) -> ChangeItem | None:
    if old == new:
        return None
    params = {"benefit": benefit_id, "old": old, "new": new}
    if old is not None and new is not None:
        return ("cap_raised" if new > old else "cap_lowered"), params
    return "cap_changed", params


def _benefit_changes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[ChangeItem]:
    before = {b["id"]: b for b in old}
    after = {b["id"]: b for b in new}
    items: list[ChangeItem] = []
    for benefit_id, benefit in after.items():
        prior = before.get(benefit_id)
        if prior is None:
            cap = benefit.get("max_amount_cny")
            params = {"benefit": benefit_id, "kind": benefit.get("kind"), "cap": cap}
            items.append(("benefit_added" if cap is None else "benefit_added_cap", params))
            continue
        cap_item = _cap_change(
            benefit_id, prior.get("max_amount_cny"), benefit.get("max_amount_cny")
        )
        if cap_item:
            items.append(cap_item)
        if prior.get("percent") != benefit.get("percent"):
            rate = {
                "benefit": benefit_id,
                "old": prior.get("percent"),
                "new": benefit.get("percent"),
            }
            items.append(("rate_changed", rate))
    items.extend(("benefit_removed", {"benefit": b}) for b in before if b not in after)
    return items


def _constraint_changes(old: dict[str, Any], new: dict[str, Any]) -> list[ChangeItem]:
    items: list[ChangeItem] = []
    old_fund = (old.get("fund") or {}).get("budget_cny")
    new_fund = (new.get("fund") or {}).get("budget_cny")
    if old_fund != new_fund:
        items.append(("fund_changed", {"old": old_fund, "new": new_fund}))
    if old.get("max_total_cny") != new.get("max_total_cny"):
        items.append(
            (
                "total_cap_changed",
                {"old": old.get("max_total_cny"), "new": new.get("max_total_cny")},
            )
        )
    if old.get("exclusive") != new.get("exclusive") or old.get("stacking_group") != new.get(
        "stacking_group"
    ):
        items.append(("stacking_changed", {}))
    return items


def change_items(
    previous: dict[str, Any] | None, current: dict[str, Any], *, revoked: bool = False
) -> list[ChangeItem]:
    """What changed from ``previous`` to ``current`` (None: a new policy), as catalog keys
    and parameters, so each locale words it (``summarize_change`` in English)."""
    if revoked:
        return [("revoked", {"title": title_of(current)})]
    if previous is None:
        return [("new_policy", {"title": title_of(current)})]
    items: list[ChangeItem] = []
    old_eff, new_eff = previous.get("effective") or {}, current.get("effective") or {}
    for kind, key in (("deadline", "to"), ("start", "from")):
        moved = _moved(kind, old_eff.get(key), new_eff.get(key))
        if moved:
            items.append(moved)
    items += _benefit_changes(previous.get("benefits") or [], current.get("benefits") or [])
    items += _constraint_changes(
        previous.get("constraints") or {}, current.get("constraints") or {}
    )
    if previous.get("criteria") != current.get("criteria"):
        items.append(("criteria_changed", {}))
    if previous.get("issuer") != current.get("issuer"):
        items.append(("issuer_changed", {}))
    if previous.get("title") != current.get("title"):
        items.append(("title_changed", {"title": title_of(current)}))
    return items or [("no_material_change", {})]


# The machine-facing English of each change (the webhook ``summary``), worded as before
# the message catalogs existed, for consumers that read it.
_ENGLISH = {
    "new_policy": "new policy: {title}",
    "revoked": "revoked: {title}",
    "deadline_set": "deadline set to {new}",
    "deadline_removed": "deadline removed (was {old})",
    "deadline_moved": "deadline moved from {old} to {new}",
    "start_set": "start date set to {new}",
    "start_removed": "start date removed (was {old})",
    "start_moved": "start date moved from {old} to {new}",
    "benefit_added": "new benefit {benefit} ({kind})",
    "benefit_added_cap": "new benefit {benefit} ({kind}, up to {cap:,} CNY)",
    "benefit_removed": "benefit {benefit} removed",
    "cap_raised": "cap raised from {old:,} to {new:,} CNY for benefit {benefit}",
    "cap_lowered": "cap lowered from {old:,} to {new:,} CNY for benefit {benefit}",
    "cap_changed": "cap changed from {old_cny} to {new_cny} for benefit {benefit}",
    "rate_changed": "rate changed from {old}% to {new}% for benefit {benefit}",
    "fund_changed": "fund budget changed from {old_cny} to {new_cny}",
    "total_cap_changed": "total cap changed from {old_cny} to {new_cny}",
    "stacking_changed": "stacking rules changed",
    "criteria_changed": "eligibility criteria changed",
    "issuer_changed": "issuer changed",
    "title_changed": "title changed to {title}",
    "no_material_change": "document updated (no material change)",
    "revoke_reason": "reason: {reason}",
}


def english_sentence(key: str, params: dict[str, Any]) -> str:
    """The English sentence of one change item (see :func:`change_items`)."""
    amounts = {
        f"{name}_cny": _cny(params.get(name))
        for name in ("old", "new")
        if not isinstance(params.get(name), str)
    }
    return _ENGLISH[key].format_map({**params, **amounts})


def summarize_change(
    previous: dict[str, Any] | None, current: dict[str, Any], *, revoked: bool = False
) -> list[str]:
    """Sentences describing ``current`` against ``previous`` (None: a new policy)."""
    return [english_sentence(key, p) for key, p in change_items(previous, current, revoked=revoked)]


def summarize_eligibility(change: dict[str, Any], *, policy_title: str | None) -> str:
    """One sentence for an ``eligibility.changed`` payload."""
    name = policy_title or change["policy_id"]
    status, amount = change["status"], change.get("amount_cny")
    previous = change.get("previous_status")
    if status == "eligible" and previous == "eligible":
        return (
            f"amount for {name} changed from {_cny(change.get('previous_amount_cny'))}"
            f" to {_cny(amount)}"
        )
    if status == "eligible":
        return f"now eligible for {name}" + (f" (up to {amount:,} CNY)" if amount else "")
    if status == "unknown":
        missing = ", ".join(change.get("missing_fields") or []) or "some fields"
        return f"eligibility for {name} is unknown: missing {missing}"
    return (
        f"no longer eligible for {name}" if previous == "eligible" else f"not eligible for {name}"
    )
