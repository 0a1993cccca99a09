"""HTTP plumbing shared by the registry's routers: dependencies, resources, errors."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Query, Request, Response
from pydantic import BaseModel

from reelpolicy_common.auth import Principal
from reelpolicy_common.http import ApiError
from reelpolicy_common.storable import StoredText
from reelpolicy_common.subjects import EnterpriseAttributes, ProductionAttributes
from reelpolicy_registry import handlers
from reelpolicy_registry.bootstrap import Registry
from reelpolicy_registry.domain import (
    IF_MATCH_PATTERN,
    MAX_REGION_HISTORY,
    InvalidRecordError,
    StoredEnterprise,
    StoredProduction,
    parse_if_match,
)
from reelpolicy_registry.ports import DuplicateError

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
BAD_IF_MATCH = (
    '`If-Match` is not a version (`3`, `"3"`, `W/"3"`) nor `*`, or names a number beyond'
    " any version"
)
"""What a 400 means on an operation taking ``If-Match``."""
BAD_CURSOR = "`cursor` is not a `next_cursor` that an earlier page gave"
"""What a 400 means on a list operation."""
BAD_RECORD = (
    "the record breaks a rule the schema cannot state: a credit code's check digit"
    " (GB 32100-2015), a region code absent from GB/T 2260, or (a patch) a region change"
    f" that would keep more than {MAX_REGION_HISTORY} earlier regions"
)
"""What a 400 means on an operation that stores a record."""
BAD_JSON = "the body is not JSON text (e.g. not UTF-8)"
"""What a 400 means on an operation taking a JSON body (FastAPI cannot read it)."""
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[StoredText | None, Query(description="next_cursor of the previous page")]


class Resource(BaseModel):
    id: str
    version: int
    created_at: datetime
    updated_at: datetime


class EnterpriseResource(EnterpriseAttributes, Resource):
    """An enterprise: its id and version, and its attributes."""


class ProductionResource(ProductionAttributes, Resource):
    """A production: its id and version, and its attributes."""


R = TypeVar("R", bound=Resource)


def _resource(
    cls: type[R], stored: StoredEnterprise | StoredProduction, response: Response | None
) -> R:
    """The API form of a stored record; sets ``ETag`` to its version when given a response."""
    if response is not None:
        response.headers["ETag"] = f'"{stored.version}"'
    return cls(
        id=stored.id,
        version=stored.version,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
        **stored.attributes,
    )


def enterprise_resource(
    e: StoredEnterprise, response: Response | None = None
) -> EnterpriseResource:
    return _resource(EnterpriseResource, e, response)


def production_resource(
    p: StoredProduction, response: Response | None = None
) -> ProductionResource:
    return _resource(ProductionResource, p, response)


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


async def call(operation: Any) -> Any:
    """Await a use case, turning its domain errors into HTTP errors.

    A request reaches a use case only once it matches its schema, so a record the
    registry refuses breaks a rule the schema cannot state: 400 (a check digit, a region
    code absent from GB/T 2260, a region history over its bound).
    """
    try:
        return await operation
    except InvalidRecordError as exc:
        raise ApiError(400, str(exc), details=exc.errors) from None
    except handlers.NotFoundError as exc:
        raise ApiError(404, str(exc), field=exc.field) from None
    except handlers.StaleVersionError as exc:
        raise ApiError(412, str(exc), field="If-Match", extra={"version": exc.current}) from None
    except DuplicateError as exc:
        raise ApiError(409, exc.message, field=exc.field) from None
    except handlers.QuotaExceededError as exc:
        raise ApiError(409, str(exc), field=exc.field) from None


def owner_of(principal: Principal) -> str | None:
    """The enterprise a company key is bound to (None for an operator: no restriction)."""
    return None if principal.is_operator else principal.enterprise_id
