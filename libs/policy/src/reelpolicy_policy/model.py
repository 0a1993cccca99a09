"""Pydantic v2 models of a policy document (everything except the criteria tree).

The criteria tree is parsed by :mod:`reelpolicy_policy.criteria` (for precise JSON-path
errors); :class:`Policy` bundles the validated document with that tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from reelpolicy_contracts.storable import PgInt
from reelpolicy_contracts.subjects import MAX_MONEY_CNY, IssuerLevel
from reelpolicy_policy.criteria import Node

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,79}$")]
Ident = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
FactId = Annotated[str, StringConstraints(pattern=r"^F-[A-Z]{2}-\d{2}$")]
RegionCode = Annotated[str, StringConstraints(pattern=r"^[1-9]\d{5}$")]
Prefix = Annotated[str, StringConstraints(pattern=r"^\d{2}(\d{2}){0,2}$")]
Yuan = Annotated[int, Field(ge=0, le=MAX_MONEY_CNY)]
Percent = Annotated[float, Field(gt=0, le=1000, multiple_of=0.01)]

Basis = Literal[
    "fixed",
    "up_to",
    "discretionary",
    "percentage_of_field",
    "percentage_of_benefit",
    "matching",
    "non_monetary",
]
MONEY_FROM_CAP = frozenset({"fixed", "up_to", "discretionary"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    zh: Annotated[str, StringConstraints(min_length=1)]
    en: Annotated[str, StringConstraints(min_length=1)]


class Issuer(_Strict):
    name: Annotated[str, StringConstraints(min_length=1)]
    level: IssuerLevel
    region_code: RegionCode | None = Field(
        default=None, description="GB/T 2260 code; null only for platform issuers."
    )


class Source(_Strict):
    fact: FactId
    url: str | None = None


class Effective(_Strict):
    from_: date = Field(alias="from")
    to: date | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class GrantMatch(_Strict):
    """Which received grants are matched: level in ``issuer_levels`` OR region within a prefix."""

    issuer_levels: list[IssuerLevel] = Field(default_factory=list)
    issuer_region_prefixes: list[Prefix] = Field(default_factory=list)


class Benefit(_Strict):
    id: Ident
    kind: Ident
    basis: Basis
    max_amount_cny: Yuan | None = Field(
        description="Integer yuan cap; null = non-monetary or amount not given by the source."
    )
    percent: Percent | None = Field(
        default=None, description="For percentage_of_field / percentage_of_benefit / matching."
    )
    of_field: str | None = None
    of_benefit: Ident | None = None
    match: GrantMatch | None = None
    notes: str | None = None


class StackingGroup(_Strict):
    id: Slug
    cap_cny: Yuan


class Fund(_Strict):
    id: Slug
    budget_cny: Yuan


class Constraints(_Strict):
    exclusive: list[Annotated[list[Ident], Field(min_length=2)]] = Field(
        default_factory=list, description="Groups of benefit ids; only the best one is offered."
    )
    max_total_cny: Yuan | None = None
    stacking_group: StackingGroup | None = None
    fund: Fund | None = None


class PolicyDocument(_Strict):
    """A policy document (criteria kept raw here; see ``Policy.criteria``)."""

    id: Slug
    version: Annotated[PgInt, Field(ge=1)] | None = None
    title: Text
    issuer: Issuer
    sources: Annotated[list[Source], Field(min_length=1)]
    effective: Effective
    subject: Literal["enterprise", "production"]
    criteria: dict[str, Any]
    benefits: Annotated[list[Benefit], Field(min_length=1)]
    constraints: Constraints | None = None
    notes: str | None = None


@dataclass(frozen=True)
class PolicyScope:
    """Which subjects a policy can touch: its subject type and region prefixes (or any)."""

    subject: Literal["enterprise", "production"]
    region_prefixes: tuple[str, ...] | None  # None: any region (national / platform issuers)


@dataclass(frozen=True)
class Policy:
    document: PolicyDocument
    criteria: Node
    scope: PolicyScope
    fields: tuple[str, ...] = field(default=())  # every field referenced (criteria + benefits)

    @property
    def id(self) -> str:
        return self.document.id

    @property
    def version(self) -> int | None:
        return self.document.version

    @property
    def subject(self) -> Literal["enterprise", "production"]:
        return self.document.subject

    @property
    def benefits(self) -> list[Benefit]:
        return self.document.benefits

    @cached_property
    def constraints(self) -> Constraints:
        """The document's constraints, or none (an empty set, built once per policy)."""
        return self.document.constraints or Constraints()


class PolicyValidationError(ValueError):
    """An invalid policy document; ``errors`` is a list of ``{path, message}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        lines = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:10])
        super().__init__(f"invalid policy document ({len(errors)} error(s)): {lines}")
