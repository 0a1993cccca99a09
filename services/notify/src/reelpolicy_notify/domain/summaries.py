"""Plain-language summaries of what changed between two versions of a policy (pure)."""

from __future__ import annotations

from typing import Any

from reelpolicy_notify.domain.policies import title_of


def _cny(amount: int | None) -> str:
    return "no cap" if amount is None else f"{amount:,} CNY"


def _moved(what: str, old: Any, new: Any) -> str | None:
    if old == new:
        return None
    if old is None:
        return f"{what} set to {new}"
    if new is None:
        return f"{what} removed (was {old})"
    return f"{what} moved from {old} to {new}"


def _cap_change(benefit_id: str, old: int | None, new: int | None) -> str | None:
    if old == new:
        return None
    if old is not None and new is not None:
        verb = "raised" if new > old else "lowered"
        return f"cap {verb} from {old:,} to {new:,} CNY for benefit {benefit_id}"
    return f"cap changed from {_cny(old)} to {_cny(new)} for benefit {benefit_id}"


def _benefit_changes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    before = {b["id"]: b for b in old}
    after = {b["id"]: b for b in new}
    lines: list[str] = []
    for benefit_id, benefit in after.items():
        prior = before.get(benefit_id)
        if prior is None:
            cap = benefit.get("max_amount_cny")
            extra = f", up to {cap:,} CNY" if cap is not None else ""
            lines.append(f"new benefit {benefit_id} ({benefit.get('kind')}{extra})")
            continue
        cap = _cap_change(benefit_id, prior.get("max_amount_cny"), benefit.get("max_amount_cny"))
        if cap:
            lines.append(cap)
        if prior.get("percent") != benefit.get("percent"):
            lines.append(
                f"rate changed from {prior.get('percent')}% to {benefit.get('percent')}%"
                f" for benefit {benefit_id}"
            )
    lines.extend(f"benefit {b} removed" for b in before if b not in after)
    return lines


def _constraint_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    old_fund = (old.get("fund") or {}).get("budget_cny")
    new_fund = (new.get("fund") or {}).get("budget_cny")
    if old_fund != new_fund:
        lines.append(f"fund budget changed from {_cny(old_fund)} to {_cny(new_fund)}")
    if old.get("max_total_cny") != new.get("max_total_cny"):
        lines.append(
            f"total cap changed from {_cny(old.get('max_total_cny'))}"
            f" to {_cny(new.get('max_total_cny'))}"
        )
    if old.get("exclusive") != new.get("exclusive") or old.get("stacking_group") != new.get(
        "stacking_group"
    ):
        lines.append("stacking rules changed")
    return lines


def summarize_change(
    previous: dict[str, Any] | None, current: dict[str, Any], *, revoked: bool = False
) -> list[str]:
    """Sentences describing ``current`` against ``previous`` (None: a new policy)."""
    if revoked:
        return [f"revoked: {title_of(current)}"]
    if previous is None:
        return [f"new policy: {title_of(current)}"]
    lines: list[str] = []
    old_eff, new_eff = previous.get("effective") or {}, current.get("effective") or {}
    for what, key in (("deadline", "to"), ("start date", "from")):
        moved = _moved(what, old_eff.get(key), new_eff.get(key))
        if moved:
            lines.append(moved)
    lines += _benefit_changes(previous.get("benefits") or [], current.get("benefits") or [])
    lines += _constraint_changes(
        previous.get("constraints") or {}, current.get("constraints") or {}
    )
    if previous.get("criteria") != current.get("criteria"):
        lines.append("eligibility criteria changed")
    if previous.get("issuer") != current.get("issuer"):
        lines.append("issuer changed")
    if previous.get("title") != current.get("title"):
        lines.append(f"title changed to {title_of(current)}")
    return lines or ["document updated (no material change)"]


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
