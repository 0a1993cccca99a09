"""The typed field schema policies may reference, derived from ``reelpolicy_contracts.subjects``.

Every field a policy names is a dotted path (``production.platforms``,
``enterprise.age_days``) registered here with one :class:`FieldType`; the operators a
predicate may apply depend on that type. ``flatten_subject`` turns the shared pydantic
models into ``{path: value}`` (``None`` = unknown) — the one place where attributes
become policy values, used by the per-subject evaluator, the columnar frame builder
and the CEL translation alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Literal

from reelpolicy_contracts.subjects import (
    Award,
    ContentStatus,
    EnterpriseAttributes,
    EnterpriseKind,
    IssuerLevel,
    Platform,
    ProductionAttributes,
    Theme,
)

SubjectType = Literal["enterprise", "production"]


class FieldType(StrEnum):
    region = "region"  # six-digit GB/T 2260 code
    enum = "enum"  # one value of a closed vocabulary
    enum_set = "enum_set"  # a list of values of a closed vocabulary (platforms, awards...)
    int = "int"
    float = "float"
    bool = "bool"
    date = "date"
    region_list = "region_list"  # a list of region codes
    grants = "grants"  # the raw list of grants received (for `exists` and matching)


OPERATORS: dict[FieldType, frozenset[str]] = {
    FieldType.region: frozenset({"eq", "ne", "in", "not_in", "within", "exists"}),
    FieldType.enum: frozenset({"eq", "ne", "in", "not_in", "exists"}),
    FieldType.enum_set: frozenset({"contains_any", "contains_all", "exists"}),
    FieldType.int: frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "between", "exists"}),
    FieldType.float: frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "between", "exists"}),
    FieldType.bool: frozenset({"eq", "exists"}),
    FieldType.date: frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "between", "exists"}),
    FieldType.region_list: frozenset({"any_within", "exists"}),
    FieldType.grants: frozenset({"exists"}),
}
ALL_OPERATORS = frozenset().union(*OPERATORS.values())


@dataclass(frozen=True)
class FieldSpec:
    path: str
    type: FieldType
    description: str
    vocabulary: tuple[str, ...] = ()  # for enum / enum_set
    derived: bool = False

    @property
    def subject(self) -> SubjectType:
        return "enterprise" if self.path.startswith("enterprise.") else "production"


def _vocab(e: type[StrEnum]) -> tuple[str, ...]:
    return tuple(m.value for m in e)


_F = FieldType
FIELDS: dict[str, FieldSpec] = {
    s.path: s
    for s in (
        FieldSpec("enterprise.region_code", _F.region, "Registered region (GB/T 2260)."),
        FieldSpec("enterprise.kind", _F.enum, "Kind of enterprise.", _vocab(EnterpriseKind)),
        FieldSpec("enterprise.established_on", _F.date, "Date of establishment."),
        FieldSpec(
            "enterprise.age_days",
            _F.int,
            "Days from established_on to the evaluation date.",
            derived=True,
        ),
        FieldSpec("enterprise.employees", _F.int, "Number of employees."),
        FieldSpec("enterprise.registered_capital_cny", _F.int, "Registered capital, yuan."),
        FieldSpec("enterprise.sme", _F.bool, "Small or medium-sized enterprise."),
        FieldSpec("production.region_code", _F.region, "Region where the drama is produced."),
        FieldSpec("production.filming_region_codes", _F.region_list, "Filming regions."),
        FieldSpec("production.episodes", _F.int, "Number of episodes."),
        FieldSpec("production.minutes_per_episode", _F.float, "Minutes per episode."),
        FieldSpec("production.budget_cny", _F.int, "Production budget, yuan."),
        FieldSpec("production.promotion_budget_cny", _F.int, "Promotion budget, yuan."),
        FieldSpec("production.release_date", _F.date, "Release date."),
        FieldSpec("production.platforms", _F.enum_set, "Platforms.", _vocab(Platform)),
        FieldSpec("production.themes", _F.enum_set, "Themes.", _vocab(Theme)),
        FieldSpec("production.awards", _F.enum_set, "Awards and list selections.", _vocab(Award)),
        FieldSpec("production.grants", _F.grants, "Grants already received (raw list)."),
        FieldSpec(
            "production.grants.issuer_levels",
            _F.enum_set,
            "Issuer levels of the grants received.",
            _vocab(IssuerLevel),
            derived=True,
        ),
        FieldSpec("production.grants.count", _F.int, "Number of grants received.", derived=True),
        FieldSpec(
            "production.grants.total_amount_cny", _F.int, "Sum of grants received.", derived=True
        ),
        FieldSpec("production.metrics.views", _F.int, "Views on platforms."),
        FieldSpec("production.metrics.rating", _F.float, "Rating, 0-10."),
        FieldSpec(
            "production.content_status",
            _F.enum,
            "Content review status (F-NR-02).",
            _vocab(ContentStatus),
        ),
        FieldSpec(
            "production.overseas.market_count",
            _F.int,
            "Number of overseas markets (ISO 3166 codes listed).",
            derived=True,
        ),
        FieldSpec(
            "production.overseas.language_count",
            _F.int,
            "Number of overseas languages.",
            derived=True,
        ),
    )
}


def fields_for(subject: SubjectType) -> dict[str, FieldSpec]:
    """The fields a policy on ``subject`` may use (a production sees its enterprise too)."""
    if subject == "production":
        return FIELDS
    return {p: s for p, s in FIELDS.items() if s.subject == "enterprise"}


GrantTuple = tuple[str, str | None, int]  # (issuer_level, issuer_region_code, amount_cny)


@dataclass(frozen=True)
class Subject:
    """One subject to evaluate: an enterprise, or a production with its owning enterprise."""

    subject_id: str
    enterprise: EnterpriseAttributes | None = None
    production: ProductionAttributes | None = None

    @property
    def type(self) -> SubjectType:
        return "production" if self.production is not None else "enterprise"


def _set(values: list[Any] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(str(v) for v in values)


def flatten_subject(subject: Subject) -> dict[str, Any]:
    """``{field path: value}`` for every non-today-derived field (``None`` = unknown).

    Values: region/enum as ``str``, enum_set as ``frozenset[str]``, dates as ``date``,
    region_list as ``tuple[str, ...]``, grants as a tuple of :data:`GrantTuple`.
    ``enterprise.age_days`` is derived at evaluation time from ``enterprise.established_on``.
    """
    out: dict[str, Any] = dict.fromkeys(FIELDS)
    e = subject.enterprise
    if e is not None:
        out["enterprise.region_code"] = e.region_code
        out["enterprise.kind"] = e.kind.value
        out["enterprise.established_on"] = e.established_on
        out["enterprise.employees"] = e.employees
        out["enterprise.registered_capital_cny"] = e.registered_capital_cny
        out["enterprise.sme"] = e.sme
    p = subject.production
    if p is None:
        return {k: v for k, v in out.items() if k.startswith("enterprise.")}
    out["production.region_code"] = p.region_code
    frc = p.filming_region_codes
    out["production.filming_region_codes"] = None if frc is None else tuple(frc)
    out["production.episodes"] = p.episodes
    out["production.minutes_per_episode"] = p.minutes_per_episode
    out["production.budget_cny"] = p.budget_cny
    out["production.promotion_budget_cny"] = p.promotion_budget_cny
    out["production.release_date"] = p.release_date
    out["production.platforms"] = _set(p.platforms)
    out["production.themes"] = _set(p.themes)
    out["production.awards"] = _set(p.awards)
    if p.grants is not None:
        grants = tuple((g.issuer_level.value, g.issuer_region_code, g.amount_cny) for g in p.grants)
        out["production.grants"] = grants
        out["production.grants.issuer_levels"] = frozenset(g[0] for g in grants)
        out["production.grants.count"] = len(grants)
        out["production.grants.total_amount_cny"] = sum(g[2] for g in grants)
    if p.metrics is not None:
        out["production.metrics.views"] = p.metrics.views
        out["production.metrics.rating"] = p.metrics.rating
    out["production.content_status"] = None if p.content_status is None else p.content_status.value
    if p.overseas is not None:
        out["production.overseas.market_count"] = len(p.overseas.markets)
        out["production.overseas.language_count"] = len(p.overseas.languages)
    return out


def age_days(established_on: date | None, today: date) -> int | None:
    return None if established_on is None else (today - established_on).days


def region_within(code: str, prefix: str) -> bool:
    """GB/T 2260 containment: ``310110`` is within ``31`` and ``3101``."""
    return code.startswith(prefix)
