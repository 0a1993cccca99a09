"""Results as stored and the changes between two sets of them (per-subject path).

Only ``eligible`` and ``unknown`` results are stored: an absent result means
``ineligible``. A change is a (subject, policy) whose status or amount differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reelpolicy_policy import Result

SubjectType = Literal["enterprise", "production"]
Key = tuple[str, str]  # (subject_id, policy_id)


@dataclass(frozen=True)
class Outcome:
    """One (subject, policy) result with the enterprise it belongs to."""

    subject_type: SubjectType
    subject_id: str
    enterprise_id: str
    policy_id: str
    policy_version: int
    status: str
    amount_cny: int | None
    missing_fields: list[str] = field(default_factory=list)
    explanation: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.subject_id, self.policy_id)

    @property
    def stored(self) -> bool:
        return self.status != "ineligible"


@dataclass(frozen=True)
class Change:
    """A (subject, policy) whose status or amount changed; ``after`` is the new outcome."""

    after: Outcome
    previous_status: str
    previous_amount_cny: int | None

    @property
    def became_eligible(self) -> bool:
        return self.after.status == "eligible" and self.previous_status != "eligible"

    @property
    def lost_eligibility(self) -> bool:
        return self.previous_status == "eligible" and self.after.status != "eligible"


def outcome_of(result: Result, *, enterprise_id: str, policy_version: int) -> Outcome:
    return Outcome(
        subject_type=result.subject_type,
        subject_id=result.subject_id,
        enterprise_id=enterprise_id,
        policy_id=result.policy_id,
        policy_version=policy_version,
        status=result.status,
        amount_cny=result.amount_cny if result.status != "ineligible" else None,
        missing_fields=list(result.missing_fields),
        explanation=dict(result.explanation),
    )


def diff_outcomes(
    *, previous: Mapping[Key, Outcome], current: Iterable[Outcome], cleared: Iterable[Outcome] = ()
) -> list[Change]:
    """Changes from the stored ``previous`` to ``current``.

    ``current`` holds every evaluated result (ineligible ones too). A stored result
    with no current counterpart becomes ineligible (its subject or policy is gone);
    ``cleared`` supplies the outcome to report for those (else one is derived).
    """
    changes: list[Change] = []
    seen: set[Key] = set()
    for now in current:
        seen.add(now.key)
        before = previous.get(now.key)
        _append_if_changed(changes, before, now)
    replacements = {o.key: o for o in cleared}
    for key, before in previous.items():
        if key in seen:
            continue
        gone = replacements.get(key) or Outcome(
            subject_type=before.subject_type,
            subject_id=before.subject_id,
            enterprise_id=before.enterprise_id,
            policy_id=before.policy_id,
            policy_version=before.policy_version,
            status="ineligible",
            amount_cny=None,
            explanation={"reason": "subject or policy no longer exists"},
        )
        _append_if_changed(changes, before, gone)
    return changes


def _append_if_changed(changes: list[Change], before: Outcome | None, now: Outcome) -> None:
    prev_status = before.status if before else "ineligible"
    prev_amount = before.amount_cny if before else None
    now_amount = now.amount_cny if now.stored else None
    if prev_status != now.status or prev_amount != now_amount:
        changes.append(Change(now, prev_status, prev_amount))
