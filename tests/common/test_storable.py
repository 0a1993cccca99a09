"""The shared validators of what PostgreSQL can store (``reelpolicy_contracts.storable``)."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, StringConstraints, TypeAdapter, ValidationError

from reelpolicy_contracts.storable import (
    NO_NUL_PATTERN,
    PG_BIGINT_MAX,
    PG_INT_MAX,
    PG_INT_MIN,
    PgBigInt,
    PgInt,
    PgTimestamp,
    StoredJsonObject,
    StoredText,
    unstorable_json_path,
    unstorable_reason,
)


class Record(BaseModel):
    name: Annotated[StoredText, StringConstraints(max_length=10)]
    tags: list[StoredText] = Field(default_factory=list)
    count: PgInt | None = None
    total: PgBigInt | None = None
    extra: StoredJsonObject = Field(default_factory=dict)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("plain", None),
        ("中文 and emoji 🎬", None),
        ("\ufffd", None),  # the replacement character is ordinary text
        ("a\x00b", "NUL character (U+0000)"),
        ("a\ud800b", "lone surrogate (U+D800)"),
        ("\udfff", "lone surrogate (U+DFFF)"),
    ],
)
def test_unstorable_reason_names_what_postgresql_refuses(text: str, reason: str | None) -> None:
    found = unstorable_reason(text)
    assert (found is None) if reason is None else (reason in (found or ""))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"name": "ok", "tags": ["fine", "\ud83c"]}, "tags"),
        ({"name": "ok", "extra": {"deep": [{"x": "a\x00"}]}}, "extra"),
        ({"name": "ok", "extra": {"a\x00": 1}}, "extra"),
    ],
)
def test_stored_text_refuses_unstorable_text_naming_the_field(
    data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Record.model_validate(data)
    assert [e["loc"][0] for e in caught.value.errors()] == [field]


def test_free_form_json_names_the_path_inside() -> None:
    assert unstorable_json_path({"a": [1, {"b": "x\x00"}]}) == (
        "$.a[1].b",
        "must not contain a NUL character (U+0000)",
    )
    assert unstorable_json_path({"a": [1, {"b": "fine"}], "c": None}) is None
    deep: Any = "a\x00"
    for _ in range(10_000):  # no recursion: any depth is walked
        deep = [deep]
    assert unstorable_json_path(deep) is not None


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        ({"count": PG_INT_MAX, "total": PG_BIGINT_MAX}, True),
        ({"count": PG_INT_MIN}, True),
        ({"count": PG_INT_MAX + 1}, False),
        ({"count": 4398046511104}, False),
        ({"total": PG_BIGINT_MAX + 1}, False),
    ],
)
def test_integers_are_bounded_to_their_column(data: dict[str, Any], ok: bool) -> None:
    data = {"name": "x", **data}
    if ok:
        Record.model_validate(data)
    else:
        with pytest.raises(ValidationError):
            Record.model_validate(data)


def test_the_json_schema_states_the_limits() -> None:
    schema = Record.model_json_schema()["properties"]
    assert schema["name"]["pattern"] == NO_NUL_PATTERN
    assert schema["tags"]["items"]["pattern"] == NO_NUL_PATTERN
    count = schema["count"]["anyOf"][0]
    assert (count["minimum"], count["maximum"]) == (PG_INT_MIN, PG_INT_MAX)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-12-07T10:00:00+08:00", True),
        ("0001-01-01T00:00:00", True),  # naive: sent as it is
        ("0001-01-01T00:00:00+11:00", False),  # before year 1 in UTC
        ("9999-12-31T23:59:59-01:00", False),  # after year 9999 in UTC
    ],
)
def test_timestamps_must_exist_in_utc(text: str, ok: bool) -> None:
    adapter = TypeAdapter(PgTimestamp)
    if ok:
        adapter.validate_python(text)
    else:
        with pytest.raises(ValidationError, match="outside years 1 to 9999"):
            adapter.validate_python(text)


@pytest.mark.parametrize("value", ["0.5", 1700000000, 0.5, "2026-01-01", "2026-01-01T00:00"])
def test_timestamps_are_rfc3339_text(value: object) -> None:
    with pytest.raises(ValidationError, match="RFC 3339 date-time"):
        TypeAdapter(PgTimestamp).validate_python(value)
