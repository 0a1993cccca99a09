"""``/v1/productions``: create, read, patch, soft-delete, list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from reelpolicy_common.auth import CurrentPrincipal
from reelpolicy_common.http import Page
from reelpolicy_common.storable import StoredText
from reelpolicy_common.subjects import ContentStatus, Platform, Theme
from reelpolicy_registry import handlers
from reelpolicy_registry.domain import ProductionInput
from reelpolicy_registry.entrypoints.resources import (
    Cursor,
    IfMatch,
    Limit,
    ProductionResource,
    RegistryDep,
    call,
    decode_cursor,
    expected_version,
    is_uuid,
    owner_of,
    page_cursor,
    patch_body,
    production_resource,
)

router = APIRouter(prefix="/v1/productions", tags=["productions"])


@router.post("", status_code=201, response_model=ProductionResource)
async def create_production(
    body: ProductionInput,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    response: Response,
) -> ProductionResource:
    """Register a production of an existing enterprise.

    A company key may create productions of its own enterprise only (others: 404).
    ``external_id`` is unique per enterprise (409 when taken).
    """
    stored = await call(
        handlers.create_production(
            uow=registry.uow, data=body.model_dump(mode="json"), owner=owner_of(principal)
        )
    )
    return production_resource(stored, response)


@router.get("/{production_id}", response_model=ProductionResource)
async def get_production(
    production_id: StoredText,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    response: Response,
) -> ProductionResource:
    """One production (a company key sees only its enterprise's; others answer 404)."""
    stored = await call(
        handlers.get_production(
            uow=registry.uow, production_id=production_id, owner=owner_of(principal)
        )
    )
    return production_resource(stored, response)


@router.patch("/{production_id}", response_model=ProductionResource)
async def patch_production(
    production_id: StoredText,
    body: Annotated[dict[str, Any], Body(description="JSON merge patch of the attributes.")],
    registry: RegistryDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> ProductionResource:
    """Merge-patch the attributes (RFC 7396), validated whole; 412 on a stale If-Match."""
    stored = await call(
        handlers.patch_production(
            uow=registry.uow,
            production_id=production_id,
            patch=patch_body(body),
            expected_version=expected_version(if_match),
            owner=owner_of(principal),
        )
    )
    return production_resource(stored, response)


@router.delete("/{production_id}", response_model=ProductionResource)
async def delete_production(
    production_id: StoredText,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    if_match: IfMatch = None,
) -> ProductionResource:
    """Soft-delete a production (emits a ``deleted: true`` snapshot); 412 on a stale If-Match."""
    stored = await call(
        handlers.delete_production(
            uow=registry.uow,
            production_id=production_id,
            expected_version=expected_version(if_match),
            owner=owner_of(principal),
        )
    )
    return production_resource(stored)


@router.get("", response_model=Page[ProductionResource])
async def list_productions(
    registry: RegistryDep,
    principal: CurrentPrincipal,
    enterprise_id: StoredText | None = None,
    region_prefix: Annotated[str | None, Query(pattern=r"^\d{1,6}$")] = None,
    platform: Platform | None = None,
    theme: Theme | None = None,
    content_status: ContentStatus | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[ProductionResource]:
    """Live productions in id order, filtered; a company key lists only its enterprise's."""
    owner = owner_of(principal)
    if owner is not None:
        if enterprise_id not in (None, owner):
            return Page[ProductionResource](items=[], next_cursor=None)
        enterprise_id = owner
    if enterprise_id is not None and not is_uuid(enterprise_id):
        return Page[ProductionResource](items=[], next_cursor=None)
    async with registry.uow() as work:
        items = await work.productions.find(
            enterprise_id=enterprise_id,
            region_prefix=region_prefix,
            platform=None if platform is None else platform.value,
            theme=None if theme is None else theme.value,
            content_status=None if content_status is None else content_status.value,
            after=decode_cursor(cursor),
            limit=limit + 1,
        )
    return Page[ProductionResource](
        items=[production_resource(p) for p in items[:limit]],
        next_cursor=page_cursor(items, limit, lambda p: p.id),
    )
