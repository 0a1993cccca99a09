"""Import files: JSON Lines or CSV into rows, or per-row errors.

JSON Lines: one object per line, ``{"type": "enterprise" | "production", ...}`` with
the attributes of :mod:`reelpolicy_contracts.subjects`; a production names its
enterprise by ``enterprise_credit_code`` (or ``enterprise_id``). Lines end at ``\n``
only (:func:`jsonl_lines`; a ``\r`` before it is JSON whitespace): U+2028, U+0085,
form feed and the other separators ``str.splitlines`` knows stay inside their row.
Blank lines are skipped; a row's number is its line number in the file.

CSV (UTF-8, header row required): a ``type`` column plus any attribute columns
(one file may mix both types; a cell that does not apply is left empty). An
empty cell means unknown. List fields (``tags``, ``filming_region_codes``,
``platforms``, ``themes``, ``awards``, ``overseas.markets``, ``overseas.languages``)
are ``;``-separated; ``metrics.views`` and ``metrics.rating`` fill ``metrics``;
``grants`` and ``region_history`` hold JSON arrays. The csv module reads the line
ends (:func:`csv_lines`), so a quoted cell keeps its line breaks as written. A row's
number is the file line its record starts on (the header is line 1), what an editor
shows; it is the spreadsheet row number too while no cell spans lines.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from reelpolicy_contracts.subjects import EnterpriseAttributes, ProductionAttributes

LIST_COLUMNS = frozenset(
    {
        "tags",
        "filming_region_codes",
        "platforms",
        "themes",
        "awards",
        "overseas.markets",
        "overseas.languages",
    }
)
JSON_COLUMNS = frozenset({"grants", "region_history"})
CSV_COLUMNS = frozenset(
    {"type", "enterprise_credit_code", "metrics.views", "metrics.rating"}
    | set(EnterpriseAttributes.model_fields)
    | set(ProductionAttributes.model_fields)
    | LIST_COLUMNS
) - {"metrics", "overseas"}


@dataclass(frozen=True)
class RawRow:
    """One record, not validated yet: a JSON text (JSON Lines) or a dict (CSV)."""

    row: int
    data: str | dict[str, Any]


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str


class MalformedFileError(Exception):
    """The file as a whole cannot be read (e.g. a CSV header naming unknown columns)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text, split on ``\n`` only (a file to iterate over is
    opened with ``newline="\n"`` for the same lines)."""
    return text.split("\n")


def csv_lines(text: str) -> io.StringIO:
    """A CSV text as :func:`csv_rows` reads it: each line with its own line end, as
    from a file opened with ``newline=""``."""
    return io.StringIO(text, newline="")


def jsonl_rows(lines: Iterable[str]) -> Iterator[RawRow | RowError]:
    """Rows of a JSON Lines file (parsed and validated later, in one step per row)."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield RawRow(number, line)


def _cell(column: str, value: str) -> Any:
    if column in LIST_COLUMNS:
        return [part.strip() for part in value.split(";") if part.strip()]
    if column in JSON_COLUMNS:
        return json.loads(value)
    return value


def _csv_record(header: list[str], values: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for column, raw in zip(header, values, strict=True):
        value = raw.strip()
        if not value:
            continue
        parsed = _cell(column, value)
        if "." in column:
            parent, child = column.split(".", 1)
            data.setdefault(parent, {})[child] = parsed
        else:
            data[column] = parsed
    return data


def csv_rows(lines: Iterable[str]) -> Iterator[RawRow | RowError]:
    """Rows of a CSV file (:func:`csv_lines`, or a file opened with ``newline=""``),
    each numbered by the line it starts on; raises :class:`MalformedFileError` for a
    bad header."""
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise MalformedFileError("header", "the CSV file is empty") from None
    except csv.Error as exc:
        raise MalformedFileError("header", f"malformed CSV: {exc}") from None
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown or "type" not in header or len(set(header)) != len(header):
        problem = f"unknown columns {unknown}" if unknown else "missing or repeated columns"
        raise MalformedFileError("header", f"{problem}; a 'type' column is required")
    while True:
        number = reader.line_num + 1  # the line after the previous record
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(number, "row", f"malformed CSV: {exc}")
            continue
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            yield RowError(number, "row", f"expected {len(header)} cells, got {len(values)}")
            continue
        try:
            data = _csv_record(header, values)
        except ValueError as exc:
            yield RowError(number, "row", f"malformed JSON cell: {exc}")
            continue
        except RecursionError:  # the json module recurses per level of nesting
            yield RowError(number, "row", "a JSON cell is nested too deeply")
            continue
        yield RawRow(number, data)
