"""Three-valued logic, operators, region prefixes, age, validation errors, canonical form."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import jsonschema
import pytest
from policy_helpers import TODAY, doc, enterprise, policy, prod_subject

from reelpolicy_policy import (
    PolicyValidationError,
    Subject,
    evaluate,
    load_policy_text,
    parse_policy,
    policy_document_dict,
    policy_json_schema,
)

KNOWN_T = {"field": "production.region_code", "op": "within", "value": "31"}
KNOWN_F = {"field": "production.region_code", "op": "within", "value": "44"}
UNKNOWN = {"field": "production.budget_cny", "op": "gte", "value": 1}


def status(criteria: dict[str, Any], **kw: Any) -> str:
    subject = prod_subject(region_code="310110", budget_cny=None, **kw)
    return evaluate(policy(criteria), subject, today=TODAY).status


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"all": [KNOWN_T, UNKNOWN]}, "unknown"),
        ({"all": [KNOWN_F, UNKNOWN]}, "ineligible"),
        ({"all": [KNOWN_T, KNOWN_T]}, "eligible"),
        ({"any": [KNOWN_T, UNKNOWN]}, "eligible"),
        ({"any": [KNOWN_F, UNKNOWN]}, "unknown"),
        ({"any": [KNOWN_F, KNOWN_F]}, "ineligible"),
        ({"not": UNKNOWN}, "unknown"),
        ({"not": KNOWN_F}, "eligible"),
        ({"not": {"any": [KNOWN_T, UNKNOWN]}}, "ineligible"),
        ({"field": "production.budget_cny", "op": "exists"}, "ineligible"),
        ({"not": {"field": "production.budget_cny", "op": "exists"}}, "eligible"),
    ],
)
def test_kleene_logic(criteria: dict[str, Any], expected: str) -> None:
    assert status(criteria) == expected


def test_unknown_lists_missing_fields_and_hint() -> None:
    r = evaluate(
        policy({"all": [KNOWN_T, UNKNOWN]}), prod_subject(region_code="310110"), today=TODAY
    )
    assert r.status == "unknown"
    assert r.missing_fields == ["production.budget_cny"]
    assert "production.budget_cny" in r.explanation["hint"]
    json.dumps(r.explanation)  # JSON-serialisable


@pytest.mark.parametrize(
    ("prefix", "code", "inside"),
    [
        ("31", "310110", True),
        ("3101", "310110", True),
        ("310110", "310110", True),
        ("310117", "310110", False),
        ("44", "310110", False),
        ("4403", "440305", True),
    ],
)
def test_region_prefix(prefix: str, code: str, inside: bool) -> None:
    p = policy({"field": "production.region_code", "op": "within", "value": prefix})
    assert evaluate(p, prod_subject(region_code=code), today=TODAY).status == (
        "eligible" if inside else "ineligible"
    )


def test_age_days_derived_from_established_on_and_today() -> None:
    p = policy({"field": "enterprise.age_days", "op": "lte", "value": 365})
    young = prod_subject(ent=enterprise(established_on=TODAY - timedelta(days=365)))
    old = prod_subject(ent=enterprise(established_on=TODAY - timedelta(days=366)))
    unknown = prod_subject(ent=enterprise(established_on=None))
    assert evaluate(p, young, today=TODAY).status == "eligible"
    assert evaluate(p, old, today=TODAY).status == "ineligible"
    r = evaluate(p, unknown, today=TODAY)
    assert (r.status, r.missing_fields) == ("unknown", ["enterprise.age_days"])
    assert evaluate(p, young, today=TODAY + timedelta(days=1)).status == "ineligible"


def test_production_without_enterprise_has_unknown_enterprise_fields() -> None:
    p = policy({"field": "enterprise.region_code", "op": "within", "value": "31"})
    s = Subject("p", enterprise=None, production=prod_subject().production)
    assert evaluate(p, s, today=TODAY).missing_fields == ["enterprise.region_code"]


def test_list_membership_and_dates() -> None:
    any_p = policy(
        {"field": "production.platforms", "op": "contains_any", "value": ["douyin", "hongguo"]}
    )
    all_p = policy(
        {"field": "production.platforms", "op": "contains_all", "value": ["douyin", "hongguo"]}
    )
    s = prod_subject(platforms=["douyin"])
    assert evaluate(any_p, s, today=TODAY).status == "eligible"
    assert evaluate(all_p, s, today=TODAY).status == "ineligible"
    assert evaluate(any_p, prod_subject(platforms=None), today=TODAY).status == "unknown"
    between = policy(
        {"field": "production.release_date", "op": "between", "value": ["2025-01-01", "2025-12-31"]}
    )
    assert (
        evaluate(between, prod_subject(release_date=date(2025, 6, 1)), today=TODAY).status
        == "eligible"
    )


def test_not_in_force_is_ineligible() -> None:
    p = policy(KNOWN_T, effective={"from": "2024-06-25", "to": "2025-12-31"})
    r = evaluate(p, prod_subject(region_code="310110"), today=TODAY)
    assert (r.status, r.explanation["in_force"]) == ("ineligible", False)


def errors_of(data: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(PolicyValidationError) as exc:
        parse_policy(data)
    return exc.value.errors


def test_typo_in_field_names_json_path() -> None:
    errs = errors_of(
        doc({"all": [KNOWN_T, {"not": {"field": "production.platfroms", "op": "exists"}}]})
    )
    assert errs[0]["path"] == "$.criteria.all[1].not.field"
    assert "production.platfroms" in errs[0]["message"]


def test_operator_not_fitting_type() -> None:
    errs = errors_of(doc({"any": [{"field": "production.platforms", "op": "gte", "value": 3}]}))
    assert errs[0]["path"] == "$.criteria.any[0].op"
    assert "contains_any" in errs[0]["message"]


def test_bad_value_and_enterprise_field_scope() -> None:
    errs = errors_of(
        doc({"field": "production.themes", "op": "contains_any", "value": ["zombies"]})
    )
    assert errs[0]["path"] == "$.criteria.value[0]"
    errs = errors_of(
        doc({"field": "production.budget_cny", "op": "gte", "value": 1}, subject="enterprise")
    )
    assert errs[0]["path"] == "$.criteria.field"


def test_document_errors_are_collected_whole() -> None:
    d = doc(
        KNOWN_T,
        [
            {
                "id": "a",
                "kind": "k",
                "basis": "percentage_of_field",
                "max_amount_cny": None,
                "percent": 30,
                "of_field": "production.title",
            }
        ],
    )
    d["title"] = {"zh": "只有中文"}
    d["issuer"]["level"] = "galactic"
    paths = {e["path"] for e in errors_of(d)}
    assert {"$.title.en", "$.issuer.level"} <= paths
    d = doc(
        KNOWN_T,
        [
            {
                "id": "a",
                "kind": "k",
                "basis": "percentage_of_field",
                "max_amount_cny": None,
                "percent": 30,
                "of_field": "production.title",
            }
        ],
    )
    assert [e["path"] for e in errors_of(d)] == ["$.benefits[0].of_field"]


def test_exclusive_group_must_name_benefits() -> None:
    d = doc(KNOWN_T, constraints={"exclusive": [["grant", "ghost"]]})
    assert errors_of(d)[0]["path"] == "$.constraints.exclusive[0][1]"


def test_load_text_json_yaml_and_canonical_form() -> None:
    d = doc({"all": [KNOWN_T]})
    from_json = load_policy_text(json.dumps(d), "application/json")
    yaml_text = (
        "id: test-policy\ntitle: {zh: 测试, en: Test}\n"
        "issuer: {name: Yangpu, level: district, region_code: '310110'}\n"
        "sources: [{fact: F-YP-01}]\neffective: {from: 2024-06-25}\nsubject: production\n"
        "criteria: {all: [{field: production.region_code, op: within, value: '31'}]}\n"
        "benefits: [{id: grant, kind: subsidy, basis: up_to, max_amount_cny: 1000}]\n"
    )
    from_yaml = load_policy_text(yaml_text, "application/yaml; charset=utf-8")
    canon = policy_document_dict(from_json)
    assert canon == policy_document_dict(from_yaml)
    assert canon["criteria"] == {
        "all": [{"field": "production.region_code", "op": "within", "value": ["31"]}]
    }
    assert policy_document_dict(parse_policy(canon)) == canon
    jsonschema.validate(canon, policy_json_schema())
    with pytest.raises(PolicyValidationError):
        load_policy_text("{nope", "application/json")


def test_json_schema_rejects_unknown_field() -> None:
    bad = policy_document_dict(policy(KNOWN_T))
    bad["criteria"] = {"field": "production.platfroms", "op": "exists"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, policy_json_schema())


def test_scope_hint() -> None:
    p = policy(KNOWN_T, issuer={"name": "Shanghai", "level": "municipal", "region_code": "310000"})
    assert (p.scope.subject, p.scope.region_prefixes) == ("production", ("31",))
    assert p.fields == ("production.region_code",)


@pytest.mark.parametrize("op", ["contains_all", "contains_any"])
def test_a_value_listed_twice_counts_once_in_both_evaluators(op: str) -> None:
    from reelpolicy_policy import evaluate_columnar, subjects_to_frame

    twice = {
        "field": "production.themes",
        "op": op,
        "value": ["yellow_river_culture", "yellow_river_culture"],
    }
    p = policy(twice)
    s = prod_subject(region_code="310110", themes=["yellow_river_culture"])
    bulk = evaluate_columnar([p], subjects_to_frame([s]), today=TODAY).long()
    assert evaluate(p, s, today=TODAY).status == "eligible"
    assert bulk.row(0, named=True)["status"] == "eligible"
