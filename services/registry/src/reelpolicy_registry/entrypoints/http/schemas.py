"""What the registry's resources share over HTTP: the record resources, and what a 400
means on each kind of operation (for the OpenAPI descriptions)."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from fastapi import Response
from pydantic import BaseModel

from reelpolicy_contracts.subjects import EnterpriseAttributes, ProductionAttributes
from reelpolicy_registry.domain.records import (
    MAX_REGION_HISTORY,
    StoredEnterprise,
    StoredProduction,
)

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
