"""Limits on a policy document's shape: depth, size, and text PostgreSQL can store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bad_input import deep_policy_json, policy_document
from reelpolicy_policy import PolicyValidationError, load_policy_text, parse_policy
from reelpolicy_policy.limits import MAX_CRITERIA_DEPTH, MAX_DOCUMENT_NODES


def nested(depth: int) -> dict[str, Any]:
    """Criteria ``depth`` levels deep, ``all`` and ``not`` alternating."""
    node: dict[str, Any] = {"field": "enterprise.region_code", "op": "within", "value": "31"}
    for level in range(depth - 1):
        node = {"not": node} if level % 2 else {"all": [node]}
    return node


def errors_of(data: Any) -> list[dict[str, str]]:
    with pytest.raises(PolicyValidationError) as caught:
        parse_policy(data)
    return caught.value.errors


def test_criteria_at_the_depth_limit_are_accepted() -> None:
    policy = parse_policy(policy_document(criteria=nested(MAX_CRITERIA_DEPTH)))
    assert policy.id


@pytest.mark.parametrize("depth", [MAX_CRITERIA_DEPTH + 1, 300, 1_000])
def test_deeper_criteria_are_refused_naming_the_limit(depth: int) -> None:
    errors = errors_of(policy_document(criteria=nested(depth)))
    assert any("MAX_CRITERIA_DEPTH" in e["message"] for e in errors), errors
    assert errors[0]["path"].startswith("$.criteria")


def test_a_document_nested_1000_deep_as_text_is_refused_without_recursion_error() -> None:
    for content_type in ("application/json", "application/yaml"):
        with pytest.raises(PolicyValidationError) as caught:
            load_policy_text(deep_policy_json(1_000), content_type)
        assert "DEPTH" in str(caught.value), (content_type, caught.value)


def test_a_document_with_too_many_values_is_refused_naming_the_limit() -> None:
    doc = policy_document(notes="x")
    doc["benefits"] = [{**doc["benefits"][0], "notes": "n"}] + [
        {"junk": list(range(1_000))} for _ in range(MAX_DOCUMENT_NODES // 1_000 + 1)
    ]
    errors = errors_of(doc)
    assert any("MAX_DOCUMENT_NODES" in e["message"] for e in errors), errors


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"notes": "a\x00b"}, "$.notes"),
        ({"title": {"zh": "\ud800", "en": "x"}}, "$.title.zh"),
        ({"criteria": {"field": "enterprise.kind", "op": "in", "value": ["\x00"]}}, "$.criteria"),
    ],
)
def test_unstorable_text_is_refused_with_its_path(changes: dict[str, Any], path: str) -> None:
    errors = errors_of(policy_document(**changes))
    assert any(e["path"].startswith(path) for e in errors), errors


def test_numbers_beyond_64_bits_are_refused() -> None:
    doc = policy_document(criteria={"field": "enterprise.employees", "op": "gte", "value": 2**64})
    assert any(e["path"] == "$.criteria.value" for e in errors_of(doc))
    with pytest.raises(PolicyValidationError, match="not parseable"):
        load_policy_text(json.dumps(doc).replace(str(2**64), "9" * 5_000), "application/json")
