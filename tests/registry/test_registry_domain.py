"""The registry's domain: credit codes, the region table, merge patches, versions, file rows."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError
from stdnum.cn import uscc

from reelpolicy_datagen.registry_rows import credit_code
from reelpolicy_registry.domain.errors import InvalidRecordError
from reelpolicy_registry.domain.import_files import (
    MalformedFileError,
    RawRow,
    csv_lines,
    csv_rows,
    jsonl_rows,
)
from reelpolicy_registry.domain.import_validation import EnterpriseRow, row_errors, validate_row
from reelpolicy_registry.domain.records import (
    StoredEnterprise,
    merge_patch,
    patched_enterprise,
    validate_enterprise,
    validate_production,
)
from reelpolicy_registry.domain.regions import is_known_region, region_name, region_table
from reelpolicy_registry.domain.versions import parse_if_match

GOOD_CODE = credit_code(random.Random(1), "310110")


def enterprise(**overrides: object) -> dict[str, object]:
    return {
        "name": "Star Media",
        "credit_code": GOOD_CODE,
        "region_code": "310110",
        "kind": "production_company",
        **overrides,
    }


def fields(exc: InvalidRecordError) -> set[str]:
    return {e["field"] for e in exc.errors}


@pytest.mark.parametrize(
    "code",
    [
        "310110",
        "310117",
        "310112",
        "610113",
        "410105",
        "440305",
        "350000",
        "320412",
        "450000",
        "500000",
        "130402",
        "421002",
        "330113",
        "330205",
        "330100",
    ],
)
def test_region_table_has_the_codes_the_policies_name(code: str) -> None:
    assert is_known_region(code)


def test_region_table_levels_and_names() -> None:
    table = region_table()
    assert len(table) > 3000
    assert region_name("310110") == "杨浦区"
    assert region_name("330113") == "临平区"
    assert not is_known_region("999999")
    assert {r.level for r in table.values()} == {"province", "prefecture", "county"}


def test_credit_code_checksum_is_verified() -> None:
    assert uscc.is_valid(GOOD_CODE)
    assert validate_enterprise(enterprise()).credit_code == GOOD_CODE
    wrong = GOOD_CODE[:-1] + ("0" if GOOD_CODE[-1] != "0" else "1")
    with pytest.raises(InvalidRecordError) as caught:
        validate_enterprise(enterprise(credit_code=wrong))
    assert fields(caught.value) == {"credit_code"}
    assert "check digit" in caught.value.errors[0]["message"]


def test_unknown_region_and_negative_money_are_named() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        validate_enterprise(enterprise(region_code="999999", registered_capital_cny=-1))
    assert fields(caught.value) == {"region_code", "registered_capital_cny"}


def test_production_rules() -> None:
    base = {"enterprise_id": "e1", "title": "T"}
    assert validate_production(base).platforms is None
    with pytest.raises(InvalidRecordError) as caught:
        validate_production({**base, "platforms": ["myspace"], "budget_cny": -5})
    assert fields(caught.value) == {"platforms.0", "budget_cny"}
    with pytest.raises(InvalidRecordError) as caught:
        validate_production({**base, "filming_region_codes": ["310110", "999998"]})
    assert fields(caught.value) == {"filming_region_codes"}


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "tags": ["x"]}
    patch = {"a": None, "b": {"c": 5}, "tags": ["y"], "e": 1}
    assert merge_patch(target, patch) == {"b": {"c": 5, "d": 3}, "tags": ["y"], "e": 1}
    assert target["a"] == 1  # untouched


def stored(**attributes: object) -> StoredEnterprise:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    attrs = validate_enterprise(enterprise(**attributes)).model_dump(mode="json")
    return StoredEnterprise("id", 1, attrs, date(2020, 5, 1), now, now)


def test_relocation_pushes_the_old_region_with_its_since_date() -> None:
    updated, since = patched_enterprise(stored(), {"region_code": "310117"}, today=date(2025, 6, 1))
    assert updated.region_code == "310117"
    assert [(r.region_code, r.since) for r in updated.region_history] == [
        ("310110", date(2020, 5, 1))
    ]
    assert since == date(2025, 6, 1)
    same, since = patched_enterprise(stored(), {"employees": 3}, today=date(2025, 6, 1))
    assert same.region_history == []
    assert since == date(2020, 5, 1)


def test_patch_is_validated_whole() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        patched_enterprise(stored(), {"name": None}, today=date(2025, 1, 1))
    assert fields(caught.value) == {"name"}


@pytest.mark.parametrize(
    ("header", "expected"), [("3", 3), ('"3"', 3), ('W/"12"', 12), ("*", None), (None, None)]
)
def test_if_match_forms(header: str | None, expected: int | None) -> None:
    assert parse_if_match(header) == expected


def test_if_match_garbage_is_an_error() -> None:
    with pytest.raises(InvalidRecordError):
        parse_if_match('"abc"')


def test_rows_are_validated_in_one_step_with_per_field_errors() -> None:
    good = json.dumps({"type": "enterprise", **enterprise()})
    lines = [
        good,
        "",
        "{not json",
        '{"type":"movie"}',
        "[1]",
        '{"type":"production","title":"T","budget_cny":-1}',
    ]
    rows = list(jsonl_rows(lines))
    assert [r.row for r in rows] == [1, 3, 4, 5, 6]
    assert isinstance(validate_row(rows[0].data), EnterpriseRow)
    problems = []
    for raw in rows[1:]:
        with pytest.raises(ValidationError) as caught:
            validate_row(raw.data)
        problems += [(e.row, e.field) for e in row_errors(raw.row, caught.value)]
    assert problems == [(3, "row"), (4, "type"), (5, "row"), (6, "budget_cny")]


def test_csv_rows_lists_nested_and_json_cells() -> None:
    text = (
        "type,name,credit_code,platforms,metrics.views,grants,enterprise_credit_code,title\n"
        'production,,,douyin;kuaishou,120,"[{""issuer_level"":""district""}]",C1,T\n'
        "enterprise,Star,C2,,,,,\n"
    )
    rows = list(csv_rows(csv_lines(text)))
    assert rows[0] == RawRow(
        2,  # its line in the file: the header is line 1
        {
            "type": "production",
            "platforms": ["douyin", "kuaishou"],
            "metrics": {"views": "120"},
            "grants": [{"issuer_level": "district"}],
            "enterprise_credit_code": "C1",
            "title": "T",
        },
    )
    assert rows[1] == RawRow(3, {"type": "enterprise", "name": "Star", "credit_code": "C2"})


def test_csv_with_unknown_columns_is_malformed() -> None:
    with pytest.raises(MalformedFileError):
        list(csv_rows(["type,colour", "enterprise,red"]))
    with pytest.raises(MalformedFileError):
        list(csv_rows([]))
