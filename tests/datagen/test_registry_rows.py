"""The synthetic registry data: deterministic, valid for the registry, realistic."""

from __future__ import annotations

from reelpolicy_datagen.registry_rows import generate_rows
from reelpolicy_registry.domain.records import validate_enterprise, validate_production


def test_generator_is_deterministic_valid_and_realistic() -> None:
    rows = list(generate_rows(enterprises=300, productions=2000, seed=7))
    assert rows == list(generate_rows(enterprises=300, productions=2000, seed=7))
    enterprises = [r for r in rows if r["type"] == "enterprise"]
    productions = [r for r in rows if r["type"] == "production"]
    by_code = {e["credit_code"]: e for e in enterprises}
    assert len(by_code) == 300
    for e in enterprises:
        validate_enterprise({k: v for k, v in e.items() if k != "type"})
    for p in productions:
        data = {k: v for k, v in p.items() if k not in ("type", "enterprise_credit_code")}
        validate_production({**data, "enterprise_id": "x"})
        assert p["enterprise_credit_code"] in by_code
    budgets = [p["budget_cny"] for p in productions if "budget_cny" in p]
    assert min(budgets) >= 300_000
    assert max(budgets) <= 1_500_000
    assert any("budget_cny" not in p for p in productions)  # some unknowns
    top = {"4101", "6101", "50"}
    assert (
        sum(e["region_code"][:4] in top or e["region_code"][:2] in top for e in enterprises) > 100
    )
    assert sum(bool(p.get("awards")) for p in productions) < len(productions) * 0.05
    assert any(p.get("grants") for p in productions)
