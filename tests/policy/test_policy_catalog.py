"""The catalog's meaning, pinned with realistic cases; the benchmark smoke run."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from policy_helpers import TODAY, enterprise, grant, policy, prod_subject

from reelpolicy_policy import (
    Policy,
    Subject,
    allocate_fund,
    apply_stacking,
    evaluate,
    evaluate_columnar,
    load_catalog,
    policy_document_dict,
    policy_json_schema,
    subjects_to_frame,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "catalog" / "SOURCES.md"
MONETARY_OR_FUND_FACTS = {
    "F-SH-01", "F-SH-02", "F-SH-03", "F-SH-04", "F-SJ-01", "F-SJ-02", "F-SJ-03", "F-SJ-04",
    "F-YP-01", "F-YP-02", "F-YP-03", "F-YP-04", "F-YP-05", "F-SZ-01", "F-XA-01", "F-FJ-01",
    "F-ZZ-01", "F-ZZ-02", "F-ZZ-03", "F-HG-01", "F-KS-01",
}  # fmt: skip
PROGRAMME_FACTS = {
    "F-SJ-05",
    "F-GX-01",
    "F-CZ-01",
    "F-CQ-01",
    "F-HD-01",
    "F-JZ-01",
    "F-NB-01",
    "F-SH-05",
}


@pytest.fixture(scope="module")
def catalog() -> dict[str, Policy]:
    return {p.id: p for p in load_catalog(ROOT / "catalog")}


def test_catalog_cites_every_fact_and_fits_the_schema(catalog: dict[str, Policy]) -> None:
    cited = {s.fact for p in catalog.values() for s in p.document.sources}
    assert cited >= MONETARY_OR_FUND_FACTS | PROGRAMME_FACTS
    # Every cited fact is documented in the repository: what it says, where it was published.
    documented = set(
        re.findall(r"^\| (F-[A-Z]+-\d+) \|", SOURCES.read_text(encoding="utf-8"), re.M)
    )
    assert cited <= documented, sorted(cited - documented)
    schema = policy_json_schema()
    for p in catalog.values():
        jsonschema.validate(policy_document_dict(p), schema)


def test_yangpu_new_enterprise_purchase_or_rent_never_both(catalog: dict[str, Policy]) -> None:
    p = catalog["yp-new-enterprise-office"]
    s = Subject("e1", enterprise=enterprise(region_code="310110", established_on=date(2025, 4, 1)))
    r = evaluate(p, s, today=TODAY)
    assert (r.status, r.amount_cny) == ("eligible", 3_000_000)
    assert r.explanation["amount"]["exclusive"][0]["chosen"] == "purchase"
    old = Subject(
        "e2", enterprise=enterprise(region_code="310110", established_on=date(2019, 1, 1))
    )
    assert evaluate(p, old, today=TODAY).status == "ineligible"
    elsewhere = Subject(
        "e3", enterprise=enterprise(region_code="310117", established_on=date(2025, 4, 1))
    )
    assert evaluate(p, elsewhere, today=TODAY).status == "ineligible"


def test_songjiang_matching_of_national_grant(catalog: dict[str, Policy]) -> None:
    p = catalog["sj-matching-funds"]
    s = prod_subject(region_code="310117", grants=[grant("national", 2_000_000)])
    assert (evaluate(p, s, today=TODAY).status, evaluate(p, s, today=TODAY).amount_cny) == (
        "eligible",
        2_000_000,
    )
    big = prod_subject(region_code="310117", grants=[grant("national", 8_000_000)])
    assert evaluate(p, big, today=TODAY).amount_cny == 3_000_000
    none = prod_subject(region_code="310117", grants=[])
    assert evaluate(p, none, today=TODAY).status == "ineligible"
    yangpu = prod_subject(region_code="310110", grants=[grant("national", 2_000_000)])
    assert evaluate(p, yangpu, today=TODAY).status == "ineligible"


def test_shenzhen_stacked_benefits_never_exceed_cap(catalog: dict[str, Policy]) -> None:
    group = {"stacking_group": {"id": "shenzhen-project-total", "cap_cny": 3_000_000}}
    extra = [
        policy(
            {"field": "production.region_code", "op": "within", "value": "4403"},
            [{"id": "x", "kind": "k", "basis": "up_to", "max_amount_cny": amt}],
            id=f"sz-extra-{i}",
            constraints=group,
        )
        for i, amt in enumerate([2_000_000, 1_500_000])
    ]
    pols = [*catalog.values(), *extra]
    subjects = [prod_subject(f"p{i}", region_code=f"44030{i}") for i in range(3, 8)]
    long = evaluate_columnar(pols, subjects_to_frame(subjects), today=TODAY).long()
    results = [
        evaluate(p, s, today=TODAY) for s in subjects for p in pols if p.subject == "production"
    ]
    stacked = apply_stacking(results, policies=pols)
    for s in subjects:
        mine = [
            r for r in stacked if r.subject_id == s.subject_id and r.policy_id.startswith("sz-")
        ]
        assert sum(r.amount_cny or 0 for r in mine) == 3_000_000
        before = long.filter(
            (long["subject_id"] == s.subject_id) & long["policy_id"].str.starts_with("sz-")
        )
        assert before["amount_cny"].sum() == 6_500_000


def test_taken_down_production_loses_eligibility(catalog: dict[str, Policy]) -> None:
    rich = dict(
        platforms=["hongguo", "kuaishou", "douyin"],
        themes=[
            "cultural_tourism",
            "local_ip",
            "animation",
            "yellow_river_culture",
            "aigc",
            "law_education",
        ],
        awards=["major_event", "platform_hit", "prestigious_award"],
        grants=[grant("national", 1_000_000)],
        promotion_budget_cny=900_000,
        metrics={"views": 10**7, "rating": 8.8},
        overseas={"markets": ["TH"]},
    )
    regions = [
        "310110",
        "310117",
        "440305",
        "610113",
        "410105",
        "350102",
        "450102",
        "320404",
        "500103",
        "130402",
    ]
    eligible_before = 0
    for code in regions:
        ok = prod_subject(
            region_code=code, filming_region_codes=[code], content_status="approved", **rich
        )
        down = prod_subject(
            region_code=code, filming_region_codes=[code], content_status="taken_down", **rich
        )
        for p in catalog.values():
            if p.subject != "production":
                continue
            if evaluate(p, ok, today=TODAY).status == "eligible":
                eligible_before += 1
                assert evaluate(p, down, today=TODAY).status == "ineligible", p.id
    assert eligible_before >= 20


def test_shanghai_fund_never_overcommits(catalog: dict[str, Policy]) -> None:
    pols = [catalog[i] for i in ("sh-guidance-fund-project", "sh-major-events")]
    subjects = [
        prod_subject(f"p{i:03}", region_code="310104", awards=["major_event"]) for i in range(40)
    ]
    results = [evaluate(p, s, today=TODAY) for s in subjects for p in pols]
    (report,) = allocate_fund(results, policies=pols)
    assert report.fund_id == "shanghai-miniseries-guidance-fund"
    assert report.committed_cny == report.budget_cny == 50_000_000
    assert sum(a.requested_cny for a in report.funded + report.unfunded) == 40 * 4_000_000
    assert report.funded[0].subject_id == "p000"


def test_benchmark_smoke() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "engine.py"),
            *("--productions", "20000", "--cel-sample", "500", "--runs", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "0 mismatches" in out.stdout
