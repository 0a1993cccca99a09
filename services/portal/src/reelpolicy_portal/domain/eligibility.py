"""The figures of an enterprise's eligibility: totals, counts, rows in display order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("eligible", "unknown", "ineligible")


@dataclass(frozen=True)
class Row:
    """One (subject, policy) result as rules answers it."""

    subject_type: str
    subject_id: str
    policy_id: str
    policy_version: int | None
    status: str
    amount_cny: int | None
    missing_fields: tuple[str, ...]
    explanation: dict[str, Any] = field(hash=False, compare=False)

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> Row:
        return cls(
            subject_type=str(item["subject_type"]),
            subject_id=str(item["subject_id"]),
            policy_id=str(item["policy_id"]),
            policy_version=item.get("policy_version"),
            status=str(item["status"]),
            amount_cny=item.get("amount_cny"),
            missing_fields=tuple(item.get("missing_fields") or ()),
            explanation=dict(item.get("explanation") or {}),
        )

    @property
    def row_id(self) -> str:
        """Stable across refreshes: the element id the page replaces in place."""
        return f"{self.subject_id}--{self.policy_id}"


@dataclass(frozen=True)
class Summary:
    total_eligible_cny: int
    """The sum of the eligible amounts (after rules' stacking caps and fund budgets);
    "unknown" rows are upper bounds and are not added in."""
    counts: dict[str, int]


def summarize(rows: list[Row]) -> Summary:
    counts = Counter(r.status for r in rows)
    total = sum(r.amount_cny or 0 for r in rows if r.status == "eligible")
    return Summary(total, {status: counts.get(status, 0) for status in STATUSES})


def in_display_order(rows: list[Row]) -> list[Row]:
    """Eligible first (largest amount first), then unknown, then ineligible."""
    rank = {status: i for i, status in enumerate(STATUSES)}
    return sorted(
        rows,
        key=lambda r: (
            rank.get(r.status, len(rank)),
            -(r.amount_cny or 0),
            r.policy_id,
            r.subject_id,
        ),
    )


def exclusive_choices(explanation: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Each "one or the other" group of the explanation: the benefit chosen and the
    ones it was chosen over."""
    amount = explanation.get("amount")
    if not isinstance(amount, dict):
        return []
    choices = []
    for group in amount.get("exclusive") or []:
        chosen = str(group.get("chosen"))
        others = [str(b) for b in group.get("group", []) if str(b) != chosen]
        choices.append((chosen, others))
    return choices
