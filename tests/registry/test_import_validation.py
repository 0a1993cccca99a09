"""Validating import rows: compact results that name their enterprise once resolved,
the same whether validated in this process or in a worker process."""

from __future__ import annotations

import json
import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor

from reelpolicy_datagen.registry_rows import generate_rows
from reelpolicy_registry.domain.import_validation import (
    PRODUCTION_ATTRIBUTES,
    ProductionRow,
    validate_chunk,
    with_enterprise_id,
)


def records() -> list[tuple[int, str | dict[str, object]]]:
    rows = list(generate_rows(enterprises=3, productions=40, seed=5))
    unkeyed = {k: v for k, v in rows[-1].items() if k != "external_id"}
    as_dict = {**rows[-2], "external_id": "from-csv"}  # CSV rows come as dicts
    texts: list[tuple[int, str | dict[str, object]]] = [
        (n, json.dumps(r, ensure_ascii=False)) for n, r in enumerate([*rows, unkeyed], 1)
    ]
    return [*texts, (len(texts) + 1, as_dict), (len(texts) + 2, '{"type": "production"}')]


def test_production_attributes_name_the_resolved_enterprise_as_serializing_would() -> None:
    chunk = validate_chunk(records())
    assert (len(chunk.enterprises), len(chunk.productions)) == (3, 42)
    assert [(e.row, e.field) for e in chunk.errors] == [(46, "title")]
    enterprise_id = str(uuid.uuid4())
    data = dict(records())
    for number, credit_code, given, external_id, attributes in chunk.productions:
        raw = data[number]
        row = (
            ProductionRow.model_validate_json(raw)
            if isinstance(raw, str)
            else ProductionRow.model_validate(raw)
        )
        assert (credit_code, given, external_id) == (
            row.enterprise_credit_code,
            row.enterprise_id,
            row.external_id,
        )
        row.enterprise_id = enterprise_id
        assert with_enterprise_id(attributes, enterprise_id) == PRODUCTION_ATTRIBUTES.dump_json(row)


def test_a_worker_process_validates_as_this_one_does() -> None:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as workers:
        remote = workers.submit(validate_chunk, records()).result(timeout=60)
    assert remote == validate_chunk(records())
