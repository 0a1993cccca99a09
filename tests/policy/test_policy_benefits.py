"""Benefit arithmetic and cross-policy constraints (stacking caps, fund budgets)."""

from __future__ import annotations

from typing import Any

from policy_helpers import TODAY, grant, policy, prod_subject

from reelpolicy_policy import (
    Policy,
    Result,
    allocate_fund,
    apply_stacking,
    apply_stacking_frame,
    evaluate,
    evaluate_columnar,
    subjects_to_frame,
)

ANY_SH = {"field": "production.region_code", "op": "within", "value": "31"}


def amount(p: Policy, **kw: Any) -> int | None:
    return evaluate(p, prod_subject(region_code="310110", **kw), today=TODAY).amount_cny


def test_exclusive_offers_the_better_never_both() -> None:
    p = policy(
        ANY_SH,
        [
            {
                "id": "purchase",
                "kind": "office_purchase",
                "basis": "up_to",
                "max_amount_cny": 3_000_000,
            },
            {"id": "rent", "kind": "office_rent", "basis": "up_to", "max_amount_cny": 1_500_000},
        ],
        constraints={"exclusive": [["purchase", "rent"]]},
    )
    r = evaluate(p, prod_subject(region_code="310110"), today=TODAY)
    assert r.amount_cny == 3_000_000
    assert r.explanation["amount"]["exclusive"] == [
        {"group": ["purchase", "rent"], "chosen": "purchase"}
    ]


def test_percentage_of_field_with_cap_and_unknown_input() -> None:
    p = policy(
        ANY_SH,
        [
            {
                "id": "promo",
                "kind": "promotion",
                "basis": "percentage_of_field",
                "percent": 30,
                "of_field": "production.promotion_budget_cny",
                "max_amount_cny": 1_000_000,
            }
        ],
    )
    assert amount(p, promotion_budget_cny=2_000_000) == 600_000
    assert amount(p, promotion_budget_cny=10_000_000) == 1_000_000
    r = evaluate(p, prod_subject(region_code="310110", promotion_budget_cny=None), today=TODAY)
    assert (r.status, r.amount_cny, r.missing_fields) == (
        "unknown",
        1_000_000,
        ["production.promotion_budget_cny"],
    )


def test_percentage_of_benefit() -> None:
    p = policy(
        ANY_SH,
        [
            {"id": "award", "kind": "reward", "basis": "fixed", "max_amount_cny": 1_000_000},
            {
                "id": "bonus",
                "kind": "bonus",
                "basis": "percentage_of_benefit",
                "of_benefit": "award",
                "percent": 20,
                "max_amount_cny": None,
            },
        ],
    )
    assert amount(p) == 1_200_000


def test_grant_matching_national_or_shanghai_only() -> None:
    p = policy(
        ANY_SH,
        [
            {
                "id": "m",
                "kind": "matching",
                "basis": "matching",
                "max_amount_cny": 3_000_000,
                "match": {"issuer_levels": ["national"], "issuer_region_prefixes": ["31"]},
            }
        ],
    )
    national = grant("national", 1_200_000)
    shanghai = grant("municipal", 500_000, "310000")
    beijing = grant("municipal", 900_000, "110000")
    assert amount(p, grants=[national, shanghai, beijing]) == 1_700_000
    assert amount(p, grants=[grant("national", 5_000_000)]) == 3_000_000
    assert amount(p, grants=[beijing]) == 0
    assert evaluate(p, prod_subject(region_code="310110"), today=TODAY).status == "unknown"


def _results(subject_id: str, amounts: dict[str, int], status: str = "eligible") -> list[Result]:
    return [
        Result(
            policy_id=pid,
            policy_version=1,
            subject_id=subject_id,
            subject_type="production",
            status=status,  # type: ignore[arg-type]
            amount_cny=a,
        )
        for pid, a in amounts.items()
    ]


def _sz(pid: str, cap: int = 3_000_000) -> Policy:
    return policy(
        ANY_SH,
        id=pid,
        constraints={"stacking_group": {"id": "shenzhen-project-total", "cap_cny": cap}},
    )


def test_stacking_cap_across_policies() -> None:
    pols = [_sz("pa"), _sz("pb"), _sz("pc"), policy(ANY_SH, id="free")]
    res = _results("s1", {"pa": 2_000_000, "pb": 1_500_000, "pc": 100_000, "free": 9_000_000})
    res += _results("s2", {"pa": 1_000_000, "pb": 1_000_000})
    out = {(r.subject_id, r.policy_id): r.amount_cny for r in apply_stacking(res, policies=pols)}
    assert out == {
        ("s1", "pa"): 2_000_000,
        ("s1", "pb"): 1_000_000,
        ("s1", "pc"): 0,
        ("s1", "free"): 9_000_000,
        ("s2", "pa"): 1_000_000,
        ("s2", "pb"): 1_000_000,
    }


def test_stacking_frame_matches_list_version() -> None:
    pols = [
        policy(
            ANY_SH,
            [{"id": "x", "kind": "k", "basis": "up_to", "max_amount_cny": 2_000_000}],
            id="pa",
            constraints={"stacking_group": {"id": "g-1", "cap_cny": 3_000_000}},
        ),
        policy(
            ANY_SH,
            [{"id": "x", "kind": "k", "basis": "up_to", "max_amount_cny": 1_500_000}],
            id="pb",
            constraints={"stacking_group": {"id": "g-1", "cap_cny": 2_500_000}},
        ),
    ]
    subjects = [
        prod_subject("p1", region_code="310110"),
        prod_subject("p2", region_code="440305"),
        prod_subject("p3", region_code=None),
    ]
    long = evaluate_columnar(pols, subjects_to_frame(subjects), today=TODAY).long()
    stacked = apply_stacking_frame(long, policies=pols)
    scalar = apply_stacking(
        [evaluate(p, s, today=TODAY) for s in subjects for p in pols], policies=pols
    )
    want = {(r.subject_id, r.policy_id): r.amount_cny for r in scalar}
    got = {
        (r["subject_id"], r["policy_id"]): r["amount_cny"] for r in stacked.iter_rows(named=True)
    }
    assert got == want
    assert want[("p1", "pa")] + want[("p1", "pb")] == 2_500_000  # the smaller declared cap


def test_fund_budget_reports_committed_and_order() -> None:
    fund = {"fund": {"id": "sh-fund", "budget_cny": 5_000_000}}
    pols = [policy(ANY_SH, id="f1", constraints=fund), policy(ANY_SH, id="f2", constraints=fund)]
    res = _results("s3", {"f1": 3_000_000}) + _results("s1", {"f1": 2_000_000, "f2": 1_000_000})
    res += _results("s2", {"f1": 1_000_000}) + _results("s9", {"f2": 700_000}, status="unknown")
    (report,) = allocate_fund(res, policies=pols)
    assert (report.budget_cny, report.committed_cny, report.remaining_cny) == (
        5_000_000,
        5_000_000,
        0,
    )
    assert report.exhausted
    funded = [(a.subject_id, a.policy_id, a.granted_cny) for a in report.funded]
    assert funded == [
        ("s1", "f1", 2_000_000),
        ("s1", "f2", 1_000_000),
        ("s2", "f1", 1_000_000),
        ("s3", "f1", 1_000_000),
    ]
    assert report.funded[-1].requested_cny == 3_000_000
    assert report.unfunded == []
    assert report.pending_unknown_cny == 700_000
