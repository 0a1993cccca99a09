"""Hypothesis strategies: random subjects and random policy documents over the field schema."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from reelpolicy_contracts.subjects import (
    Award,
    ContentStatus,
    EnterpriseAttributes,
    EnterpriseKind,
    Grant,
    IssuerLevel,
    Metrics,
    Overseas,
    Platform,
    ProductionAttributes,
    Theme,
)
from reelpolicy_policy.fields import FIELDS, OPERATORS, FieldType, Subject

REGIONS = ["310110", "310117", "310104", "440305", "610113", "410105", "500103", "350102"]
PREFIXES = sorted({r[:n] for r in REGIONS for n in (2, 4, 6)})
TODAY = date(2026, 3, 1)
DATES = st.dates(min_value=date(2018, 1, 1), max_value=date(2026, 12, 31))


def opt(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), s)


def _subset(e: Any) -> st.SearchStrategy[Any]:
    return st.lists(st.sampled_from(list(e)), unique=True, max_size=4)


grants = st.builds(
    Grant,
    issuer_level=st.sampled_from(list(IssuerLevel)),
    issuer_region_code=opt(st.sampled_from([*REGIONS, "110105"])),
    amount_cny=st.integers(0, 5_000_000),
    received_on=DATES,
)

enterprises = st.builds(
    EnterpriseAttributes,
    name=st.just("E"),
    credit_code=st.just("91310000MA1FL00000"),
    region_code=st.sampled_from(REGIONS),
    established_on=opt(DATES),
    employees=opt(st.integers(0, 500)),
    registered_capital_cny=opt(st.integers(0, 50_000_000)),
    sme=opt(st.booleans()),
    kind=st.sampled_from(list(EnterpriseKind)),
)

productions = st.builds(
    ProductionAttributes,
    enterprise_id=st.just("e"),
    title=st.just("P"),
    region_code=opt(st.sampled_from(REGIONS)),
    filming_region_codes=opt(st.lists(st.sampled_from(REGIONS), max_size=3)),
    episodes=opt(st.integers(1, 120)),
    minutes_per_episode=opt(st.sampled_from([1.0, 1.5, 2.0, 3.5, 10.0])),
    budget_cny=opt(st.integers(0, 3_000_000)),
    promotion_budget_cny=opt(st.integers(0, 20_000_000)),
    release_date=opt(DATES),
    platforms=opt(_subset(Platform)),
    themes=opt(_subset(Theme)),
    awards=opt(_subset(Award)),
    grants=opt(st.lists(grants, max_size=3)),
    metrics=opt(
        st.builds(
            Metrics,
            views=opt(st.integers(0, 10**9)),
            rating=opt(st.sampled_from([0.0, 5.5, 7.0, 9.9])),
        )
    ),
    content_status=opt(st.sampled_from(list(ContentStatus))),
    overseas=opt(
        st.builds(Overseas, markets=st.lists(st.sampled_from(["US", "JP", "TH"]), max_size=2))
    ),
)


@st.composite
def production_subjects(draw: st.DrawFn, idx: int = 0) -> Subject:
    return Subject(f"s{idx}", enterprise=draw(opt(enterprises)), production=draw(productions))


def _scalar_value(path: str) -> st.SearchStrategy[Any]:
    spec = FIELDS[path]
    t = spec.type
    if t is FieldType.region:
        return st.sampled_from(REGIONS)
    if t in (FieldType.enum, FieldType.enum_set):
        return st.sampled_from(list(spec.vocabulary))
    if t is FieldType.float:
        return st.sampled_from([0.0, 1.5, 2.0, 5.5, 7.0, 9.9])
    if t is FieldType.bool:
        return st.booleans()
    if t is FieldType.date:
        return DATES.map(date.isoformat)
    if path == "enterprise.age_days":
        return st.integers(-100, 3000)
    big = 10**9 if path.endswith("views") else 20_000_000
    return st.one_of(st.integers(0, 10), st.integers(0, big))


@st.composite
def predicates(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(sorted(FIELDS)))
    op = draw(st.sampled_from(sorted(OPERATORS[FIELDS[path].type])))
    if op == "exists":
        return {"field": path, "op": op}
    if op in ("within", "any_within"):
        value: Any = draw(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2))
    elif op in ("in", "not_in", "contains_any", "contains_all"):
        value = draw(st.lists(_scalar_value(path), min_size=1, max_size=3))
    elif op == "between":
        value = sorted(draw(st.lists(_scalar_value(path), min_size=2, max_size=2)))
    else:
        value = draw(_scalar_value(path))
    return {"field": path, "op": op, "value": value}


criteria_trees = st.recursive(
    predicates(),
    lambda kids: st.one_of(
        st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        kids.map(lambda x: {"not": x}),
    ),
    max_leaves=6,
)

INT_FIELDS = sorted(p for p, s in FIELDS.items() if s.type is FieldType.int)
CAPS = opt(st.integers(0, 5_000_000))


@st.composite
def benefits(draw: st.DrawFn) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 4))):
        basis = draw(
            st.sampled_from(
                [
                    "fixed",
                    "up_to",
                    "discretionary",
                    "non_monetary",
                    "percentage_of_field",
                    "matching",
                ]
                + (["percentage_of_benefit"] if out else [])
            )
        )
        b: dict[str, Any] = {"id": f"b{i}", "kind": "k", "basis": basis}
        b["max_amount_cny"] = None if basis == "non_monetary" else draw(CAPS)
        if basis == "fixed" and b["max_amount_cny"] is None:
            b["max_amount_cny"] = 1_000
        pct = st.sampled_from([0.5, 20, 30, 33.33, 100, 150])
        if basis == "percentage_of_field":
            b.update(percent=draw(pct), of_field=draw(st.sampled_from(INT_FIELDS)))
        elif basis == "percentage_of_benefit":
            b.update(percent=draw(pct), of_benefit=draw(st.sampled_from([x["id"] for x in out])))
        elif basis == "matching":
            b["match"] = {
                "issuer_levels": draw(_subset(IssuerLevel).map(lambda xs: [x.value for x in xs])),
                "issuer_region_prefixes": draw(st.lists(st.sampled_from(PREFIXES), max_size=2)),
            }
            if draw(st.booleans()):
                b["percent"] = draw(pct)
        out.append(b)
    return out


@st.composite
def policy_documents(draw: st.DrawFn, idx: int = 0) -> dict[str, Any]:
    bens = draw(benefits())
    ids = [b["id"] for b in bens]
    constraints: dict[str, Any] = {}
    if len(ids) >= 2 and draw(st.booleans()):
        constraints["exclusive"] = [draw(st.permutations(ids))[: draw(st.integers(2, len(ids)))]]
    if draw(st.booleans()):
        constraints["max_total_cny"] = draw(st.integers(0, 6_000_000))
    start = draw(st.sampled_from([date(2024, 1, 1), TODAY, TODAY + timedelta(days=1)]))
    effective: dict[str, Any] = {"from": start.isoformat()}
    if draw(st.booleans()):
        effective["to"] = (TODAY + timedelta(days=draw(st.integers(-1, 1)))).isoformat()
        if effective["to"] < effective["from"]:
            effective["to"] = effective["from"]
    return {
        "id": f"p{idx}",
        "title": {"zh": "随机", "en": "random"},
        "issuer": {"name": "X", "level": "district", "region_code": "310110"},
        "sources": [{"fact": "F-SH-01"}],
        "effective": effective,
        "subject": "production",
        "criteria": draw(criteria_trees),
        "benefits": bens,
        "constraints": constraints,
    }
