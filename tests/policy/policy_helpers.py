"""Small builders shared by the policy unit tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from reelpolicy_contracts.subjects import EnterpriseAttributes, Grant, ProductionAttributes
from reelpolicy_policy import Policy, Subject, parse_policy

TODAY = date(2026, 3, 1)


def doc(
    criteria: dict[str, Any], benefits: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": extra.pop("id", "test-policy"),
        "title": {"zh": "测试", "en": "Test"},
        "issuer": {"name": "Yangpu", "level": "district", "region_code": "310110"},
        "sources": [{"fact": "F-YP-01"}],
        "effective": {"from": "2024-06-25"},
        "subject": extra.pop("subject", "production"),
        "criteria": criteria,
        "benefits": benefits
        or [{"id": "grant", "kind": "subsidy", "basis": "up_to", "max_amount_cny": 1000}],
    }
    d.update(extra)
    return d


def policy(
    criteria: dict[str, Any], benefits: list[dict[str, Any]] | None = None, **extra: Any
) -> Policy:
    return parse_policy(doc(criteria, benefits, **extra))


def enterprise(**kw: Any) -> EnterpriseAttributes:
    base: dict[str, Any] = {
        "name": "Reel Co",
        "credit_code": "91310110MA1FL00000",
        "region_code": "310110",
        "kind": "production_company",
    }
    return EnterpriseAttributes(**{**base, **kw})


def production(**kw: Any) -> ProductionAttributes:
    base: dict[str, Any] = {"enterprise_id": "e1", "title": "Drama", "content_status": "approved"}
    return ProductionAttributes(**{**base, **kw})


def prod_subject(sid: str = "p1", ent: EnterpriseAttributes | None = None, **kw: Any) -> Subject:
    return Subject(
        sid, enterprise=ent if ent is not None else enterprise(), production=production(**kw)
    )


def grant(level: str, amount: int, region: str | None = None) -> Grant:
    return Grant(
        issuer_level=level,  # type: ignore[arg-type]
        issuer_region_code=region,
        amount_cny=amount,
        received_on=date(2025, 5, 1),
    )
