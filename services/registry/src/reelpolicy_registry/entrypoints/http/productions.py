"""``/v1/productions``: create, read, patch, soft-delete, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from reelpolicy_common.http import Page, problem_example, problem_responses, request_example
from reelpolicy_common.http.authenticate import CurrentPrincipal
from reelpolicy_contracts.storable import StoredText
from reelpolicy_contracts.subjects import ContentStatus, Platform, Theme
from reelpolicy_registry.domain.patches import ProductionPatch, patch_members
from reelpolicy_registry.domain.records import ProductionInput
from reelpolicy_registry.entrypoints.http.deps import (
    Cursor,
    IfMatch,
    Limit,
    RegistryDep,
    decode_cursor,
    expected_version,
    is_uuid,
    owner_of,
    page_cursor,
)
from reelpolicy_registry.entrypoints.http.errors import call
from reelpolicy_registry.entrypoints.http.schemas import (
    BAD_CURSOR,
    BAD_IF_MATCH,
    BAD_JSON,
    ProductionResource,
    production_resource,
)
from reelpolicy_registry.handlers import records as use_cases

router = APIRouter(prefix="/v1/productions", tags=["productions"])


@router.post(
    "",
    status_code=201,
    response_model=ProductionResource,
    responses=problem_responses(
        descriptions={
            400: f"A region code absent from GB/T 2260; or {BAD_JSON}",
            404: "No such enterprise, or (company key) not the caller's enterprise",
            409: "The enterprise already has a production with this `external_id`",
        },
        examples={
            422: problem_example(
                422,
                "episodes: Input should be greater than or equal to 1",
                ("episodes", "Input should be greater than or equal to 1"),
            )
        },
    ),
    openapi_extra=request_example(
        {
            "enterprise_id": "0195f3c2-7d7e-7c4b-9a51-3e1f2b6c8d90",
            "external_id": "drama-2026-001",
            "title": "Spring River",
            "region_code": "310110",
            "episodes": 80,
            "minutes_per_episode": 2,
            "budget_cny": 800000,
            "platforms": ["bilibili"],
            "themes": ["cultural_tourism"],
        }
    ),
)
async def create_production(
    body: ProductionInput,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    response: Response,
) -> ProductionResource:
    """Register a production of an existing enterprise.

    ``enterprise_id`` must name a live enterprise; a company key may create
    productions of its own enterprise only (others: 404).
    ``external_id`` is unique per enterprise (409 when taken). A company key's
    enterprise has at most ``MAX_PRODUCTIONS_PER_COMPANY`` live productions (409 beyond).
    """
    stored = await call(
        use_cases.create_production(
            uow=registry.uow,
            data=body.model_dump(mode="json"),
            owner=owner_of(principal),
            quota=None if principal.is_operator else registry.settings.max_productions_per_company,
        )
    )
    return production_resource(stored, response)


@router.get("/{production_id}", response_model=ProductionResource, responses=problem_responses(404))
async def get_production(
    production_id: StoredText,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    response: Response,
) -> ProductionResource:
    """One production (a company key sees only its enterprise's; others answer 404)."""
    stored = await call(
        use_cases.get_production(
            uow=registry.uow, production_id=production_id, owner=owner_of(principal)
        )
    )
    return production_resource(stored, response)


@router.patch(
    "/{production_id}",
    response_model=ProductionResource,
    responses=problem_responses(
        404,
        descriptions={
            400: f"{BAD_IF_MATCH}; or a region code absent from GB/T 2260; or {BAD_JSON}",
            409: "The patched `external_id` is taken in the enterprise",
            412: "`If-Match` is not the current version",
            422: "The patch does not match its schema (an attribute that is not patchable,"
            " such as `enterprise_id`: a production cannot move; a `null` for one the"
            " record needs; a value of the wrong shape)",
        },
    ),
)
async def patch_production(
    production_id: StoredText,
    body: ProductionPatch,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> ProductionResource:
    """Merge-patch the attributes (RFC 7396), validated whole.

    ``If-Match`` is optional; when given it must name the current version (else 412;
    a malformed one is 400). A company key patches only its enterprise's (others: 404).
    """
    stored = await call(
        use_cases.patch_production(
            uow=registry.uow,
            production_id=production_id,
            patch=patch_members(body),
            expected_version=expected_version(if_match),
            owner=owner_of(principal),
        )
    )
    return production_resource(stored, response)


@router.delete(
    "/{production_id}",
    response_model=ProductionResource,
    responses=problem_responses(404, 412, descriptions={400: BAD_IF_MATCH}),
)
async def delete_production(
    production_id: StoredText,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    if_match: IfMatch = None,
) -> ProductionResource:
    """Soft-delete a production (emits a ``deleted: true`` snapshot); 412 on a stale If-Match."""
    stored = await call(
        use_cases.delete_production(
            uow=registry.uow,
            production_id=production_id,
            expected_version=expected_version(if_match),
            owner=owner_of(principal),
        )
    )
    return production_resource(stored)


@router.get(
    "",
    response_model=Page[ProductionResource],
    responses=problem_responses(descriptions={400: BAD_CURSOR}),
)
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
