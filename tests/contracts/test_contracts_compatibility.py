"""The published schemas evolve compatibly: the rules (unit-tested on small schemas),
then the current schemas against contracts/released/."""

from __future__ import annotations

import re
from typing import Any

import pytest
from contracts_files import CONTRACTS, RELEASED, load_json

from reelpolicy_contracts import catalog
from reelpolicy_contracts.compatibility import breaking_changes, fields, release_problems
from reelpolicy_contracts.events import EventType
from reelpolicy_contracts.export import schema_file


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or []}


INT: dict[str, Any] = {"type": "integer"}
STR: dict[str, Any] = {"type": "string"}
NULLABLE_INT: dict[str, Any] = {"anyOf": [INT, {"type": "null"}], "default": None}
BASE = obj({"id": STR, "amount": NULLABLE_INT, "count": INT}, ["id", "count"])


def test_an_identical_schema_is_compatible() -> None:
    assert breaking_changes(BASE, BASE) == []


def test_adding_an_optional_field_is_compatible() -> None:
    current = obj({**BASE["properties"], "note": STR}, ["id", "count"])
    assert breaking_changes(BASE, current) == []


def test_making_a_required_field_optional_is_compatible() -> None:
    current = obj(BASE["properties"], ["id"])
    assert breaking_changes(BASE, current) == []


def test_removing_a_field_is_breaking() -> None:
    current = obj({"id": STR, "count": INT}, ["id", "count"])
    assert breaking_changes(BASE, current) == ["amount: removed"]


def test_retyping_a_field_is_breaking() -> None:
    current = obj({**BASE["properties"], "count": STR}, ["id", "count"])
    assert breaking_changes(BASE, current) == ["count: retyped from ['integer'] to ['string']"]


def test_making_a_field_nullable_or_not_is_a_retype() -> None:
    widened = obj({**BASE["properties"], "count": NULLABLE_INT}, ["id", "count"])
    narrowed = obj({**BASE["properties"], "amount": INT}, ["id", "count"])
    assert breaking_changes(BASE, widened) == [
        "count: retyped from ['integer'] to ['integer', 'null']"
    ]
    assert breaking_changes(BASE, narrowed) == [
        "amount: retyped from ['integer', 'null'] to ['integer']"
    ]


def test_a_new_enum_value_is_a_retype() -> None:
    old = obj({"status": {"enum": ["eligible", "ineligible"]}}, ["status"])
    new = obj({"status": {"enum": ["eligible", "ineligible", "pending"]}}, ["status"])
    (problem,) = breaking_changes(old, new)
    assert problem.startswith("status: retyped")


def test_making_an_optional_field_required_is_breaking() -> None:
    current = obj(BASE["properties"], ["id", "count", "amount"])
    assert breaking_changes(BASE, current) == ["amount: was optional, now required"]


def test_adding_a_required_field_is_breaking() -> None:
    current = obj({**BASE["properties"], "note": STR}, ["id", "count", "note"])
    assert breaking_changes(BASE, current) == ["note: added as required"]


def test_nested_fields_behind_refs_and_arrays_are_compared() -> None:
    def envelope(item: dict[str, Any]) -> dict[str, Any]:
        return {
            "$defs": {"Item": item},
            **obj(
                {"payload": {"$ref": "#/$defs/Item"}, "tags": {"type": "array", "items": STR}},
                ["payload"],
            ),
        }

    old = envelope(obj({"name": STR, "size": INT}, ["name"]))
    assert breaking_changes(old, envelope(obj({"name": STR, "size": INT}, ["name"]))) == []
    assert breaking_changes(old, envelope(obj({"name": STR}, ["name"]))) == [
        "payload.size: removed"
    ]
    assert breaking_changes(old, envelope(obj({"name": INT, "size": INT}, ["name"]))) == [
        "payload.name: retyped from ['string'] to ['integer']"
    ]
    retagged = {**old, "properties": {**old["properties"], "tags": {"type": "array", "items": INT}}}
    assert breaking_changes(old, retagged) == ["tags[]: retyped from ['string'] to ['integer']"]


def test_a_new_optional_object_may_have_required_fields() -> None:
    current = obj({**BASE["properties"], "extra": obj({"a": STR}, ["a"])}, ["id", "count"])
    assert breaking_changes(BASE, current) == []


def test_release_problems() -> None:
    assert release_problems({"a": 1}, {"a": {1}}) == {}
    assert "not released" in release_problems({"a": 2}, {"a": {1}})["a"]
    assert "not released" in release_problems({"new": 1}, {})["new"]
    assert "older" in release_problems({"a": 1}, {"a": {2}})["a"]


# The real schemas.


def released_versions() -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for path in RELEASED.glob("*.envelope.json"):
        match = re.fullmatch(r"(.+)\.v(\d+)\.envelope\.json", path.name)
        assert match, path
        out.setdefault(match[1], set()).add(int(match[2]))
    return out


def test_every_event_type_has_its_current_version_released() -> None:
    current = {e.type.value: e.schema_version for e in catalog.EVENTS}
    assert release_problems(current, released_versions()) == {}


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_the_current_schema_is_compatible_with_the_released_one(event_type: EventType) -> None:
    version = catalog.spec(event_type).schema_version
    for part in ("envelope", "payload"):
        name = schema_file(event_type, version, part)
        released, current = load_json(RELEASED / name), load_json(CONTRACTS / "schemas" / name)
        problems = breaking_changes(released, current)
        assert problems == [], (
            f"{name}: breaking changes within schema_version {version}: {problems}; bump the"
            " event's schema_version (and its topic where consumers must move) and run"
            " `make contracts-release`, or keep the change compatible (docs/events.md)"
        )


def test_the_released_schemas_see_every_field() -> None:
    """The comparison reaches the nested payload fields (a walk that stopped at the
    envelope would pass every change)."""
    name = schema_file(EventType.production_upserted, 1, "envelope")
    paths = fields(load_json(RELEASED / name))
    assert "payload.attributes.grants[].amount_cny" in paths
    assert "payload.attributes.metrics.views" in paths
