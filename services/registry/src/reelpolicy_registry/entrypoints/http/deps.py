"""The registry's FastAPI dependencies: the service, the shared headers and queries, and
what they mean (the version ``If-Match`` names, a page's cursor, the caller's scope)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Query, Request

from reelpolicy_common.auth import Principal
from reelpolicy_common.http import ApiError
from reelpolicy_contracts.storable import StoredText
from reelpolicy_registry.bootstrap import Registry
from reelpolicy_registry.domain.errors import InvalidRecordError
from reelpolicy_registry.domain.versions import IF_MATCH_PATTERN, parse_if_match

T = TypeVar("T")


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]
IfMatch = Annotated[
    StoredText | None,
    Header(
        alias="If-Match",
        description='The version you last saw: `3`, `"3"` or `W/"3"` (or `*`: any). Another'
        " form, or a number beyond any version, answers 400.",
        # published, not enforced here: a malformed If-Match answers 400 (parse_if_match)
        json_schema_extra={"pattern": IF_MATCH_PATTERN},
    ),
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[StoredText | None, Query(description="next_cursor of the previous page")]


def expected_version(if_match: str | None) -> int | None:
    try:
        return parse_if_match(if_match)
    except InvalidRecordError as exc:
        raise ApiError(400, "malformed If-Match", details=exc.errors) from None


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        after = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, binascii.Error):
        after = ""
    if not is_uuid(after):
        raise ApiError(400, "malformed cursor", field="cursor")
    return after


def page_cursor(items: list[T], limit: int, ident: Callable[[T], str]) -> str | None:
    if len(items) <= limit:
        return None
    return base64.urlsafe_b64encode(ident(items[limit - 1]).encode()).decode()


def owner_of(principal: Principal) -> str | None:
    """The enterprise a company key is bound to (None for an operator: no restriction)."""
    return None if principal.is_operator else principal.enterprise_id
