"""Record versions: the ``If-Match`` a caller sends, and the optimistic check against it."""

from __future__ import annotations

import re

from reelpolicy_contracts.storable import PG_INT_MAX
from reelpolicy_registry.domain.errors import InvalidRecordError, StaleVersionError

IF_MATCH_PATTERN = r'^[ \t]*(\*|(W/)?"?[0-9]+"?)[ \t]*$'
"""The ``If-Match`` forms accepted (``*``, ``3``, ``"3"``, ``W/"3"``): ASCII only, so
the published JSON Schema pattern and the server agree on every value."""

_IF_MATCH = re.compile(IF_MATCH_PATTERN)


def parse_if_match(header: str | None) -> int | None:
    """The version an ``If-Match`` header names (``3``, ``"3"``, ``W/"3"``), or None for ``*``."""
    if header is None:
        return None
    if _IF_MATCH.fullmatch(header) is None:
        raise InvalidRecordError.one("If-Match", "If-Match must be a version number")
    value = header.strip(" \t")
    if value == "*":
        return None
    version = int(value.removeprefix("W/").strip('"'))
    if version > PG_INT_MAX:
        raise InvalidRecordError.one("If-Match", "If-Match names a version beyond any stored")
    return version


def check_version(expected: int | None, current: int) -> None:
    """Raise :class:`StaleVersionError` unless ``expected`` (when given) is ``current``."""
    if expected is not None and expected != current:
        raise StaleVersionError(expected=expected, current=current)
