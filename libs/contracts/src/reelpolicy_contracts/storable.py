"""Input PostgreSQL can store: text without NUL or lone surrogates, integers that fit.

PostgreSQL refuses a NUL character in ``text`` and ``jsonb`` (``\\u0000``), and
UTF-8 cannot encode a lone surrogate (``\\ud800`` in JSON decodes to one); an integer
past its column's type overflows. Each would fail deep in a query, after validation,
as a server error. These pydantic types refuse such input where it enters (a request
body, a query, path or header parameter, an import row, a policy document), so the
client gets a 422 naming the field. Use them for every field that reaches the database:

* :data:`StoredText`: a ``str`` field (combine with ``StringConstraints`` / ``Field``);
* :data:`StoredJson`: free-form JSON (a merge patch, a document), checked throughout;
* :data:`PgInt`, :data:`PgBigInt`: integers bound for an ``integer`` / ``bigint``;
* :data:`PgTimestamp`: an RFC 3339 date-time text whose UTC value exists
  (``0001-01-01T00:00+11:00`` is valid ISO text, but lies before year 1 in UTC, where a
  ``timestamptz`` is sent). Pydantic alone would also take a number (``0.5``) as Unix
  time, which the published ``format: date-time`` does not allow.

The module is pure (pydantic only), so the policy language can use it too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import annotated_types
from pydantic import AfterValidator, BeforeValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

PG_INT_MIN, PG_INT_MAX = -(2**31), 2**31 - 1
"""The range of PostgreSQL's ``integer``."""
PG_BIGINT_MIN, PG_BIGINT_MAX = -(2**63), 2**63 - 1
"""The range of PostgreSQL's ``bigint``."""
JSON_SAFE_INT_MAX = 2**53 - 1
"""The largest integer every JSON reader holds exactly (RFC 7493): a published bound
above it is compared as a float by some clients, which then send values past it."""

NO_NUL_PATTERN = "^[^\\u0000]*$"
"""What the OpenAPI documents of a stored string (lone surrogates cannot be sent in
UTF-8, so only JSON escapes carry them; they are refused all the same)."""


def unstorable_reason(text: str) -> str | None:
    """Why PostgreSQL could not store ``text``, or None when it can."""
    if "\x00" in text:
        return "must not contain a NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"must not contain a lone surrogate (U+{ord(text[exc.start]):04X})"
    return None


def refuse_unstorable(text: str) -> str:
    """``text`` unchanged, or ValueError saying what PostgreSQL would refuse in it."""
    reason = unstorable_reason(text)
    if reason is not None:
        raise ValueError(reason)
    return text


def unstorable_json_path(value: Any, path: str = "$") -> tuple[str, str] | None:
    """The first JSON path in ``value`` (keys included) holding unstorable text, and why."""
    pending: list[tuple[str, Any]] = [(path, value)]
    while pending:  # iterative: a deeply nested document must not exhaust the stack
        where, item = pending.pop()
        if isinstance(item, str):
            reason = unstorable_reason(item)
            if reason is not None:
                return where, reason
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and (reason := unstorable_reason(key)) is not None:
                    return f"{where} (a key)", reason
                pending.append((f"{where}.{key}", child))
        elif isinstance(item, list | tuple):
            pending.extend((f"{where}[{i}]", child) for i, child in enumerate(item))
    return None


def refuse_unstorable_json(value: Any) -> Any:
    """``value`` unchanged, or ValueError naming the JSON path of unstorable text."""
    found = unstorable_json_path(value)
    if found is not None:
        where, reason = found
        raise ValueError(f"text at {where} {reason}")
    return value


RFC3339_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
"""RFC 3339's date-time (``format: date-time``); the offset is optional here so that the
caller can refuse a naive time with its own message (or send it as it is)."""


def refuse_non_date_time_text(value: Any) -> Any:
    """``value`` unchanged when a ``datetime`` or RFC 3339 text, else ValueError."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and RFC3339_DATE_TIME.fullmatch(value):
        return value
    raise ValueError("must be an RFC 3339 date-time text (e.g. 2026-01-01T00:00:00Z)")


def refuse_non_integer_json(value: Any) -> Any:
    """JSON Schema's ``integer`` is a number without a fraction: never a boolean or a
    string, which pydantic's lax mode would read as one (``true`` as 1, ``"5"`` as 5).

    Use it after the bounds, ``Annotated[int, Interval(...), BeforeValidator(this)]``:
    before them, pydantic publishes an optional field's bounds as ``ge``/``le``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    return value


def refuse_unstorable_timestamp(value: datetime) -> datetime:
    """``value`` unchanged, or ValueError when its UTC value is outside years 1-9999."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("lies outside years 1 to 9999 in UTC") from None
    return value


class _DocumentedNoNul:
    """Puts :data:`NO_NUL_PATTERN` in a string's JSON schema, unless it has a pattern."""

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if json_schema.get("type") == "string":
            json_schema.setdefault("pattern", NO_NUL_PATTERN)
        return json_schema


StoredText = Annotated[str, AfterValidator(refuse_unstorable), _DocumentedNoNul()]
"""A string PostgreSQL can store (no NUL, no lone surrogate)."""

StoredJson = Annotated[Any, AfterValidator(refuse_unstorable_json)]
"""Any JSON whose strings and keys PostgreSQL can store."""

StoredJsonObject = Annotated[dict[str, Any], AfterValidator(refuse_unstorable_json)]
"""A JSON object whose strings and keys PostgreSQL can store."""

PgInt = Annotated[int, annotated_types.Interval(ge=PG_INT_MIN, le=PG_INT_MAX)]
"""An integer that fits PostgreSQL's ``integer``."""

PgBigInt = Annotated[int, annotated_types.Interval(ge=PG_BIGINT_MIN, le=PG_BIGINT_MAX)]
"""An integer that fits PostgreSQL's ``bigint``."""

PgTimestamp = Annotated[
    datetime,
    BeforeValidator(refuse_non_date_time_text),
    AfterValidator(refuse_unstorable_timestamp),
]
"""RFC 3339 date-time text PostgreSQL's ``timestamptz`` can be sent (its UTC value exists)."""
