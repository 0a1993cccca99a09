"""Enterprises and productions: what a valid one is, and how an edit applies.

The attribute schema is :mod:`reelpolicy_contracts.subjects`; the registry adds the
checks only it can make: a unified social credit code's checksum (GB 32100-2015,
``stdnum.cn.uscc``) and region codes present in the shipped GB/T 2260 table. It also
bounds every list (the ``MAX_*`` below; strings are bounded by the schema), so a
record's event always fits in the outbox (``MAX_EVENT_BYTES``): an event the broker
could not take would otherwise be refused only after the change was stored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationError, field_validator
from stdnum import exceptions as stdnum_errors
from stdnum.cn import uscc

from reelpolicy_contracts.storable import StoredText
from reelpolicy_contracts.subjects import (
    Award,
    EnterpriseAttributes,
    Grant,
    Metrics,
    Overseas,
    Platform,
    ProductionAttributes,
    RegionCode,
    Relocation,
    Theme,
)
from reelpolicy_registry.domain.errors import InvalidRecordError
from reelpolicy_registry.domain.regions import is_known_region


def check_credit_code(value: str) -> str:
    """The compact, upper-case code, or ValueError naming what is wrong."""
    try:
        compact: str = uscc.validate(value)
    except stdnum_errors.InvalidChecksum:
        raise ValueError("unified social credit code has a wrong check digit") from None
    except stdnum_errors.InvalidLength:
        raise ValueError("unified social credit code must have 18 characters") from None
    except stdnum_errors.ValidationError:
        raise ValueError("not a unified social credit code (GB 32100-2015)") from None
    return compact


def check_region(value: str | None) -> str | None:
    if value is not None and not is_known_region(value):
        raise ValueError(f"{value} is not a known GB/T 2260 region code")
    return value


MAX_TAGS = 50
"""Tags of one enterprise (each 1-64 characters)."""
MAX_REGION_HISTORY = 100
"""Earlier registered regions kept for one enterprise."""
MAX_FILMING_REGIONS = 200
"""Filming region codes of one production."""
MAX_GRANTS = 50
"""Grants recorded for one production."""
MAX_VOCABULARY_ITEMS = 20
"""Members of ``platforms``, ``themes`` or ``awards`` (each vocabulary is smaller)."""
MAX_MARKETS = 250
"""Overseas markets (ISO 3166-1 has 249 codes)."""
MAX_LANGUAGES = 50
"""Overseas languages."""
MAX_VIEWS = 2**53 - 1
"""A production's views: the largest integer every JSON reader (a float) holds exactly,
so the published maximum means the same to all of them."""

Tag = Annotated[StoredText, StringConstraints(min_length=1, max_length=64)]


class OverseasInput(Overseas):
    markets: list[Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]] = Field(
        default_factory=list,
        max_length=MAX_MARKETS,
        description=f"ISO 3166-1 alpha-2 country codes (at most {MAX_MARKETS}).",
    )
    languages: list[Annotated[StoredText, StringConstraints(min_length=2, max_length=8)]] = Field(
        default_factory=list,
        max_length=MAX_LANGUAGES,
        description=f"BCP 47 language tags (at most {MAX_LANGUAGES}).",
    )


class MetricsInput(Metrics):
    views: int | None = Field(
        default=None,
        ge=0,
        le=MAX_VIEWS,
        description=f"Views so far (at most {MAX_VIEWS}).",
    )


class EnterpriseInput(EnterpriseAttributes):
    """Enterprise attributes as the API takes them (the published schema); the registry's
    own rules are :class:`CheckedEnterprise`'s."""

    tags: list[Tag] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description=f"Free-form tags: at most {MAX_TAGS}, each 1-64 characters.",
    )
    region_history: list[Relocation] = Field(
        default_factory=list,
        max_length=MAX_REGION_HISTORY,
        description="Earlier registered regions; the current one is region_code. At most"
        f" {MAX_REGION_HISTORY}: a region change that would add one more answers 400"
        " unless the same patch sets region_history itself.",
    )


class CheckedEnterprise(EnterpriseInput):
    """An enterprise that also keeps the rules the schema cannot state: the credit code's
    check digit, and region codes present in GB/T 2260."""

    @field_validator("credit_code")
    @classmethod
    def _credit_code(cls, value: str) -> str:
        return check_credit_code(value)

    @field_validator("region_code")
    @classmethod
    def _region(cls, value: str) -> str | None:
        return check_region(value)

    @field_validator("region_history")
    @classmethod
    def _history(cls, value: list[Relocation]) -> list[Relocation]:
        for step in value:
            check_region(step.region_code)
        return value


class ProductionInput(ProductionAttributes):
    """Production attributes as the API takes them (the published schema); the registry's
    own rules are :class:`CheckedProduction`'s."""

    filming_region_codes: list[RegionCode] | None = Field(
        default=None,
        max_length=MAX_FILMING_REGIONS,
        description=f"GB/T 2260 codes of the filming regions (at most {MAX_FILMING_REGIONS}).",
    )
    platforms: list[Platform] | None = Field(default=None, max_length=MAX_VOCABULARY_ITEMS)
    themes: list[Theme] | None = Field(default=None, max_length=MAX_VOCABULARY_ITEMS)
    awards: list[Award] | None = Field(default=None, max_length=MAX_VOCABULARY_ITEMS)
    grants: list[Grant] | None = Field(
        default=None,
        max_length=MAX_GRANTS,
        description=f"Grants already received (at most {MAX_GRANTS}).",
    )
    overseas: OverseasInput | None = None
    metrics: MetricsInput | None = None


class CheckedProduction(ProductionInput):
    """A production whose region codes are all present in GB/T 2260."""

    @field_validator("region_code")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return check_region(value)

    @field_validator("filming_region_codes")
    @classmethod
    def _filming(cls, value: list[str] | None) -> list[str] | None:
        for code in value or []:
            check_region(code)
        return value

    @field_validator("grants")
    @classmethod
    def _grants(cls, value: list[Grant] | None) -> list[Grant] | None:
        for grant in value or []:
            check_region(grant.issuer_region_code)
        return value


def validate_enterprise(data: Any) -> CheckedEnterprise:
    try:
        return CheckedEnterprise.model_validate(data)
    except ValidationError as exc:
        raise InvalidRecordError.from_validation(exc) from None


def validate_production(data: Any) -> CheckedProduction:
    try:
        return CheckedProduction.model_validate(data)
    except ValidationError as exc:
        raise InvalidRecordError.from_validation(exc) from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` removes a member."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass(frozen=True)
class StoredEnterprise:
    id: str
    version: int
    attributes: dict[str, Any]
    region_since: date | None
    created_at: datetime
    updated_at: datetime
    deleted: bool = False


@dataclass(frozen=True)
class StoredProduction:
    id: str
    version: int
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted: bool = False

    @property
    def enterprise_id(self) -> str:
        enterprise_id: str = self.attributes["enterprise_id"]
        return enterprise_id


def patched_enterprise(
    current: StoredEnterprise, patch: dict[str, Any], *, today: date
) -> tuple[CheckedEnterprise, date | None]:
    """The enterprise after ``patch`` (validated whole) and its new region-since date.

    A new ``region_code`` pushes the old one, with the date it was registered there
    since, onto ``region_history`` (unless the patch sets ``region_history`` itself).
    """
    merged = merge_patch(current.attributes, patch)
    updated = validate_enterprise(merged)
    old_region = current.attributes["region_code"]
    if updated.region_code == old_region:
        return updated, current.region_since
    if "region_history" not in patch:
        if len(updated.region_history) >= MAX_REGION_HISTORY:
            raise InvalidRecordError.one(
                "region_history",
                f"at most {MAX_REGION_HISTORY} earlier regions are kept: send region_history"
                " (without the oldest) with the new region_code",
            )
        since = current.region_since or current.created_at.date()
        updated.region_history = [
            *updated.region_history,
            Relocation(region_code=old_region, since=since),
        ]
    return updated, today


def patched_production(current: StoredProduction, patch: dict[str, Any]) -> CheckedProduction:
    """The production after ``patch``; its enterprise cannot change."""
    merged = merge_patch(current.attributes, patch)
    updated = validate_production(merged)
    if updated.enterprise_id != current.enterprise_id:
        raise InvalidRecordError.one(
            "enterprise_id", "a production cannot move to another enterprise"
        )
    return updated
