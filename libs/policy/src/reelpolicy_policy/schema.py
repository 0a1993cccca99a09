"""The JSON Schema of policy documents (served by ingest)."""

from __future__ import annotations

from typing import Any

from reelpolicy_policy.criteria import PREFIX_RE
from reelpolicy_policy.fields import ALL_OPERATORS, FIELDS, OPERATORS
from reelpolicy_policy.model import PolicyDocument

SCHEMA_ID = "https://reelpolicy.example/schemas/policy-document.json"


def _criterion_defs() -> dict[str, Any]:
    scalar = {"type": ["string", "number", "boolean"]}
    value = {
        "oneOf": [scalar, {"type": "array", "minItems": 1, "items": scalar}],
        "description": "Type depends on the field (see docs/policy-language.md).",
    }
    per_field = [
        {
            "if": {"properties": {"field": {"const": path}}},
            "then": {"properties": {"op": {"enum": sorted(OPERATORS[spec.type])}}},
        }
        for path, spec in FIELDS.items()
    ]
    return {
        "criterion": {
            "oneOf": [
                {"$ref": "#/$defs/all"},
                {"$ref": "#/$defs/any"},
                {"$ref": "#/$defs/not"},
                {"$ref": "#/$defs/predicate"},
            ]
        },
        "all": {
            "type": "object",
            "additionalProperties": False,
            "required": ["all"],
            "properties": {
                "all": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/criterion"}}
            },
        },
        "any": {
            "type": "object",
            "additionalProperties": False,
            "required": ["any"],
            "properties": {
                "any": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/criterion"}}
            },
        },
        "not": {
            "type": "object",
            "additionalProperties": False,
            "required": ["not"],
            "properties": {"not": {"$ref": "#/$defs/criterion"}},
        },
        "predicate": {
            "type": "object",
            "additionalProperties": False,
            "required": ["field", "op"],
            "properties": {
                "field": {"enum": sorted(FIELDS)},
                "op": {"enum": sorted(ALL_OPERATORS)},
                "value": value,
            },
            "allOf": per_field,
        },
        "region_prefix": {"type": "string", "pattern": PREFIX_RE.pattern},
    }


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a policy document, criteria tree included.

    Structural only: cross-references (``of_benefit``, exclusive groups) and value
    types per field are checked by :func:`reelpolicy_policy.parse.parse_policy`.
    """
    schema = PolicyDocument.model_json_schema(by_alias=True, mode="validation")
    defs = schema.setdefault("$defs", {})
    defs.update(_criterion_defs())
    schema["properties"]["criteria"] = {"$ref": "#/$defs/criterion"}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "reelpolicy policy document"
    return schema
