"""The policy catalog as the portal lists it: filters by region, issuer level and
benefit kind, and the choices each filter offers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CatalogFilter:
    region: str | None = None
    """A six-digit region code: policies issued for that region or any region above it
    (a Shanghai policy applies in Yangpu); national and platform ones apply everywhere."""
    level: str | None = None
    kind: str | None = None


def issuer_region(policy: dict[str, Any]) -> str | None:
    region = (policy.get("issuer") or {}).get("region_code")
    return None if region is None else str(region)


def applies_in(policy_region: str | None, region: str) -> bool:
    """GB/T 2260 codes are hierarchical: 310000 (Shanghai) covers 310110 (Yangpu)."""
    if policy_region is None:
        return True
    if policy_region.endswith("0000"):  # a province (or municipality)
        return region[:2] == policy_region[:2]
    if policy_region.endswith("00"):  # a city
        return region[:4] == policy_region[:4]
    return region == policy_region


def benefit_kinds(policy: dict[str, Any]) -> set[str]:
    return {str(b.get("kind")) for b in policy.get("benefits") or []}


def matches(policy: dict[str, Any], wanted: CatalogFilter) -> bool:
    if wanted.level and (policy.get("issuer") or {}).get("level") != wanted.level:
        return False
    if wanted.kind and wanted.kind not in benefit_kinds(policy):
        return False
    return not wanted.region or applies_in(issuer_region(policy), wanted.region)


def filter_choices(policies: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """Each filter's values in the catalog: (value, what to show), sorted."""
    regions: dict[str, str] = {}
    for p in policies:
        region = issuer_region(p)
        if region is not None:
            regions.setdefault(region, str((p.get("issuer") or {}).get("name") or region))
    levels = sorted({str((p.get("issuer") or {}).get("level")) for p in policies})
    kinds = sorted(set().union(*(benefit_kinds(p) for p in policies)) if policies else set())
    return {
        "region": sorted(regions.items()),
        "level": [(level, level) for level in levels],
        "kind": [(kind, kind) for kind in kinds],
    }
