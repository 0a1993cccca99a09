"""Validating import rows: a chunk of records in, compact tuples out.

:func:`validate_chunk` is the CPU-heavy half of an import (pydantic validation and
serialization) and needs nothing but its argument, so the import runs it in a worker
process (``IMPORT_PROCESSES``: :mod:`reelpolicy_registry.adapters.import_workers`) or a
thread, beside the event loop that feeds the database. Its input and output are plain
tuples, cheap to pickle.

A production's attributes are serialized with ``enterprise_id`` empty, as the first
member: the importer resolves the enterprise (by credit code, among stored ones) and
writes its id in with :func:`with_enterprise_id`, giving the same bytes as serializing
the resolved row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from reelpolicy_contracts.storable import StoredText
from reelpolicy_registry.domain.import_files import RowError
from reelpolicy_registry.domain.records import CheckedEnterprise, CheckedProduction


class EnterpriseRow(CheckedEnterprise):
    type: Literal["enterprise"]


class ProductionRow(CheckedProduction):
    type: Literal["production"]
    enterprise_credit_code: StoredText | None = None
    enterprise_id: StoredText = ""


ROW = TypeAdapter[EnterpriseRow | ProductionRow](
    Annotated[EnterpriseRow | ProductionRow, Field(discriminator="type")]
)
# A row's attributes, as stored: serialized as the parent model, so the row's own
# fields (``type``, ``enterprise_credit_code``) are left out (a third faster than
# ``model_dump_json(exclude=...)``).
ENTERPRISE_ATTRIBUTES = TypeAdapter(CheckedEnterprise)
PRODUCTION_ATTRIBUTES = TypeAdapter(CheckedProduction)
_NO_ENTERPRISE = b'{"enterprise_id":""'  # how a production's attributes begin here

Record = tuple[int, str | dict[str, Any]]
"""A row number and the row: a JSON text (JSON Lines) or a dict (CSV)."""
ValidEnterprise = tuple[int, str, str]
"""Row number, credit code, attributes JSON."""
ValidProduction = tuple[int, str | None, str, str | None, bytes]
"""Row number, enterprise credit code, enterprise id (as given), external id, and the
attributes JSON with ``enterprise_id`` empty (:func:`with_enterprise_id`)."""


@dataclass
class ValidatedChunk:
    errors: list[RowError] = field(default_factory=list)
    enterprises: list[ValidEnterprise] = field(default_factory=list)
    productions: list[ValidProduction] = field(default_factory=list)


def row_errors(row: int, exc: ValidationError) -> list[RowError]:
    """Per-field errors of one row (the union's tag is dropped from the location)."""
    errors = []
    for e in exc.errors():
        loc = [str(p) for p in e["loc"]]
        if loc and loc[0] in ("enterprise", "production"):
            loc = loc[1:]
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc, message = ["type"], "type must be 'enterprise' or 'production'"
        else:
            message = e["msg"]
        errors.append(RowError(row, ".".join(loc) or "row", message))
    return errors


def validate_row(data: str | dict[str, Any]) -> EnterpriseRow | ProductionRow:
    if isinstance(data, str):
        return ROW.validate_json(data)
    return ROW.validate_python(data)


def validate_chunk(records: list[Record]) -> ValidatedChunk:
    """Validate ``records``; each valid row becomes a tuple, each invalid one errors."""
    chunk = ValidatedChunk()
    for number, data in records:
        try:
            row = validate_row(data)
        except ValidationError as exc:
            chunk.errors.extend(row_errors(number, exc))
            continue
        if isinstance(row, EnterpriseRow):
            text = ENTERPRISE_ATTRIBUTES.dump_json(row).decode()
            chunk.enterprises.append((number, row.credit_code, text))
            continue
        given, row.enterprise_id = row.enterprise_id, ""
        attributes = PRODUCTION_ATTRIBUTES.dump_json(row)
        if not attributes.startswith(_NO_ENTERPRISE):  # the schema's first field moved
            raise RuntimeError("production attributes must begin with enterprise_id")
        chunk.productions.append(
            (number, row.enterprise_credit_code, given, row.external_id, attributes)
        )
    return chunk


def with_enterprise_id(attributes: bytes, enterprise_id: str) -> bytes:
    """A production's attributes (from :func:`validate_chunk`) naming its enterprise;
    ``enterprise_id`` is a stored enterprise's id (a UUID: nothing to escape)."""
    return b'{"enterprise_id":"' + enterprise_id.encode() + b'"' + attributes[len(_NO_ENTERPRISE) :]
