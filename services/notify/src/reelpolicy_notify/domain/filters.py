"""Subscription filters and whether an alert passes them (pure).

``region_prefix`` keeps alerts about policies whose region overlaps the prefix (a
national policy overlaps every prefix; a Shanghai ``31`` policy overlaps ``3101``);
``issuer_level``, ``policy_ids`` and ``benefit_kinds`` look at the policy;
``min_amount_cny`` keeps alerts worth at least that much (the eligible amount, or the
policy's largest cap for policy alerts). A policy notify has not seen yet passes the
policy-based filters (events of different topics are not ordered).
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Interval
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from reelpolicy_contracts.storable import JSON_SAFE_INT_MAX, StoredText, refuse_non_integer_json
from reelpolicy_notify.domain.policies import PolicyFacts


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region_prefix: str | None = Field(default=None, pattern=r"^[0-9]{1,6}$")
    issuer_level: StoredText | None = None
    policy_ids: list[StoredText] | None = None
    benefit_kinds: list[StoredText] | None = None
    min_amount_cny: (
        Annotated[
            int, Interval(ge=0, le=JSON_SAFE_INT_MAX), BeforeValidator(refuse_non_integer_json)
        ]
        | None
    ) = None

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> Filters:
        if not raw:  # most subscriptions: one shared (frozen) instance, no validation
            return _NO_FILTERS
        return cls.model_validate(raw)


_NO_FILTERS = Filters()


def _regions_overlap(prefix: str, policy_prefix: str | None) -> bool:
    return (
        policy_prefix is None
        or policy_prefix.startswith(prefix)
        or prefix.startswith(policy_prefix)
    )


def matches(
    filters: Filters, *, policy_id: str, policy: PolicyFacts | None, amount_cny: int | None
) -> bool:
    """Whether an alert about ``policy_id`` worth ``amount_cny`` passes ``filters``."""
    if filters.policy_ids is not None and policy_id not in filters.policy_ids:
        return False
    if filters.min_amount_cny is not None and (
        amount_cny is None or amount_cny < filters.min_amount_cny
    ):
        return False
    if policy is None:
        return True
    if filters.issuer_level is not None and policy.issuer_level != filters.issuer_level:
        return False
    if filters.region_prefix is not None and not _regions_overlap(
        filters.region_prefix, policy.region_prefix
    ):
        return False
    return not (
        filters.benefit_kinds is not None
        and not policy.benefit_kinds.intersection(filters.benefit_kinds)
    )
