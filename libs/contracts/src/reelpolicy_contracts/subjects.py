"""The attribute schema of enterprises and productions: one typed contract.

The registry validates what it stores against these models and emits them as the
payload of its events; the policy engine checks every field a policy names against
the same models, so a typo in a policy's field is a validation error, not a silent
false. A value of ``None`` (or an absent optional field) means *unknown*: the engine
answers ``unknown`` rather than ``ineligible`` when a policy needs it.

Vocabularies come from the policies of ``catalog/SOURCES.md``; the platform vocabulary is closed
but extendable (add a member here, and it becomes valid everywhere at once).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from reelpolicy_contracts.storable import PG_BIGINT_MAX, PgBigInt, PgInt, StoredText

RegionCode = Annotated[str, StringConstraints(pattern=r"^[1-9]\d{5}$")]
"""A six-digit GB/T 2260 administrative division code (``310110`` is Yangpu, Shanghai)."""

MAX_MONEY_CNY = PG_BIGINT_MAX // 1024
"""The largest amount accepted: sums of many amounts still fit a ``bigint`` column."""

Money = Annotated[
    int, Field(ge=0, le=MAX_MONEY_CNY, description="Integer yuan (CNY), never negative.")
]


class EnterpriseKind(StrEnum):
    production_company = "production_company"
    platform = "platform"
    association = "association"
    studio_base = "studio_base"
    individual_team = "individual_team"


class ContentStatus(StrEnum):
    filed = "filed"
    approved = "approved"
    taken_down = "taken_down"


class Platform(StrEnum):
    """Distribution platforms named in the catalog's sources (catalog/SOURCES.md) (long-video and short-video)."""

    tencent_video = "tencent_video"
    iqiyi = "iqiyi"
    youku = "youku"
    mango_tv = "mango_tv"
    bilibili = "bilibili"
    douyin = "douyin"
    kuaishou = "kuaishou"
    hongguo = "hongguo"
    xiaohongshu = "xiaohongshu"


class Theme(StrEnum):
    yellow_river_culture = "yellow_river_culture"
    intangible_heritage = "intangible_heritage"
    red_culture = "red_culture"
    cultural_tourism = "cultural_tourism"
    animation = "animation"
    aigc = "aigc"
    law_education = "law_education"
    local_ip = "local_ip"


class Award(StrEnum):
    """Awards and list selections a policy can depend on."""

    nrta_outstanding_work = "nrta_outstanding_work"
    """Listed by the NRTA as an excellent online audiovisual work (F-NR-04)."""
    prestigious_award = "prestigious_award"
    """A prestigious film and TV award (F-YP-04, F-SJ-03)."""
    platform_hit = "platform_hit"
    """Named a hit by a major platform (F-SJ-02 gives no threshold)."""
    major_event = "major_event"
    """A major impactful miniseries event (F-SH-02, F-YP-03)."""


class IssuerLevel(StrEnum):
    national = "national"
    provincial = "provincial"
    municipal = "municipal"
    district = "district"
    platform = "platform"


class Grant(BaseModel):
    """A grant the production has already received (F-SJ-01 matches these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer_level: IssuerLevel
    issuer_region_code: RegionCode | None = None
    amount_cny: Money
    received_on: date
    programme: StoredText | None = Field(default=None, max_length=200)


class Metrics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    views: PgBigInt | None = Field(default=None, ge=0)
    rating: float | None = Field(default=None, ge=0, le=10)


class Overseas(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    markets: list[Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]] = Field(
        default_factory=list, description="ISO 3166-1 alpha-2 country codes."
    )
    languages: list[Annotated[StoredText, StringConstraints(min_length=2, max_length=8)]] = Field(
        default_factory=list, description="BCP 47 language tags."
    )


class Relocation(BaseModel):
    """One step of an enterprise's registered-address history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region_code: RegionCode
    since: date


class EnterpriseAttributes(BaseModel):
    """What the registry knows of an enterprise. ``None`` means unknown."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        StoredText, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)
    ]
    credit_code: Annotated[StoredText, StringConstraints(min_length=18, max_length=18)]
    region_code: RegionCode
    established_on: date | None = None
    employees: PgInt | None = Field(default=None, ge=0)
    registered_capital_cny: Money | None = None
    sme: bool | None = None
    kind: EnterpriseKind
    tags: list[Annotated[StoredText, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list
    )
    region_history: list[Relocation] = Field(
        default_factory=list,
        description="Earlier registered regions; the current one is region_code.",
    )


class ProductionAttributes(BaseModel):
    """What the registry knows of a production (a micro-drama). ``None`` means unknown."""

    model_config = ConfigDict(extra="forbid")

    enterprise_id: StoredText
    external_id: StoredText | None = Field(default=None, max_length=120)
    title: Annotated[
        StoredText, StringConstraints(min_length=1, max_length=300, strip_whitespace=True)
    ]
    region_code: RegionCode | None = None
    filming_region_codes: list[RegionCode] | None = None
    episodes: int | None = Field(default=None, ge=1, le=10_000)
    minutes_per_episode: float | None = Field(default=None, gt=0, le=600)
    budget_cny: Money | None = None
    promotion_budget_cny: Money | None = None
    release_date: date | None = None
    platforms: list[Platform] | None = None
    themes: list[Theme] | None = None
    awards: list[Award] | None = None
    grants: list[Grant] | None = None
    metrics: Metrics | None = None
    content_status: ContentStatus | None = None
    overseas: Overseas | None = None
