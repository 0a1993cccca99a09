"""``/v1/enterprises``: create (operator), read, patch, soft-delete, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from reelpolicy_common.http import Page, problem_example, problem_responses, request_example
from reelpolicy_common.http.authenticate import CurrentPrincipal, OperatorPrincipal
from reelpolicy_contracts.storable import StoredText
from reelpolicy_contracts.subjects import EnterpriseKind
from reelpolicy_registry.domain.patches import EnterprisePatch, patch_members
from reelpolicy_registry.domain.records import EnterpriseInput
from reelpolicy_registry.entrypoints.http.deps import (
    Cursor,
    IfMatch,
    Limit,
    RegistryDep,
    decode_cursor,
    expected_version,
    owner_of,
    page_cursor,
)
from reelpolicy_registry.entrypoints.http.errors import call
from reelpolicy_registry.entrypoints.http.schemas import (
    BAD_CURSOR,
    BAD_IF_MATCH,
    BAD_JSON,
    BAD_RECORD,
    EnterpriseResource,
    enterprise_resource,
)
from reelpolicy_registry.handlers import records as use_cases

router = APIRouter(prefix="/v1/enterprises", tags=["enterprises"])


@router.post(
    "",
    status_code=201,
    response_model=EnterpriseResource,
    responses=problem_responses(
        403,
        descriptions={
            400: f"{BAD_RECORD}; or {BAD_JSON}",
            409: "A live enterprise has this credit code",
            422: "The body does not match its schema",
        },
        examples={
            400: problem_example(
                400,
                "credit_code: unified social credit code has a wrong check digit",
                ("credit_code", "unified social credit code has a wrong check digit"),
            )
        },
    ),
    openapi_extra=request_example(
        {
            "name": "Star Media",
            "credit_code": "91310110AY4CL12THL",
            "region_code": "310110",
            "kind": "production_company",
            "tags": ["micro_drama"],
            "established_on": "2021-03-04",
        }
    ),
)
async def create_enterprise(
    body: EnterpriseInput, registry: RegistryDep, _: OperatorPrincipal, response: Response
) -> EnterpriseResource:
    """Register an enterprise (operator only).

    The credit code's check digit and the region code (GB/T 2260) are verified (400);
    a live enterprise with the same credit code answers 409.
    """
    data = body.model_dump(mode="json")
    stored = await call(use_cases.create_enterprise(uow=registry.uow, data=data))
    return enterprise_resource(stored, response)


@router.get("/{enterprise_id}", response_model=EnterpriseResource, responses=problem_responses(404))
async def get_enterprise(
    enterprise_id: StoredText,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    response: Response,
) -> EnterpriseResource:
    """One enterprise (a company key sees only its own; others answer 404)."""
    stored = await call(
        use_cases.get_enterprise(
            uow=registry.uow, enterprise_id=enterprise_id, owner=owner_of(principal)
        )
    )
    return enterprise_resource(stored, response)


@router.patch(
    "/{enterprise_id}",
    response_model=EnterpriseResource,
    responses=problem_responses(
        404,
        descriptions={
            400: f"{BAD_IF_MATCH}; or {BAD_RECORD}; or {BAD_JSON}",
            409: "The patched credit code belongs to another live enterprise",
            412: "`If-Match` is not the current version",
            422: "The patch does not match its schema (an attribute that is not patchable,"
            " a `null` for one the record needs, a value of the wrong shape)",
        },
    ),
)
async def patch_enterprise(
    enterprise_id: StoredText,
    body: EnterprisePatch,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> EnterpriseResource:
    """Merge-patch the attributes (RFC 7396; ``null`` makes a field unknown).

    The result is validated whole. A changed ``region_code`` moves the old one to
    ``region_history``. ``If-Match`` is optional; when given it must name the
    current version (else 412; a malformed one is 400). A company key patches only its
    own enterprise (others: 404).
    """
    stored = await call(
        use_cases.patch_enterprise(
            uow=registry.uow,
            enterprise_id=enterprise_id,
            patch=patch_members(body),
            expected_version=expected_version(if_match),
            owner=owner_of(principal),
        )
    )
    return enterprise_resource(stored, response)


@router.delete(
    "/{enterprise_id}",
    response_model=EnterpriseResource,
    responses=problem_responses(403, 404, 412, descriptions={400: BAD_IF_MATCH}),
)
async def delete_enterprise(
    enterprise_id: StoredText, registry: RegistryDep, _: OperatorPrincipal, if_match: IfMatch = None
) -> EnterpriseResource:
    """Soft-delete an enterprise and its productions (operator only).

    Each emits a ``deleted: true`` snapshot. With ``If-Match``, a stale version
    answers 412. Answers the deleted snapshot.
    """
    stored = await call(
        use_cases.delete_enterprise(
            uow=registry.uow,
            enterprise_id=enterprise_id,
            expected_version=expected_version(if_match),
        )
    )
    return enterprise_resource(stored)


@router.get(
    "",
    response_model=Page[EnterpriseResource],
    responses=problem_responses(descriptions={400: BAD_CURSOR}),
)
async def list_enterprises(
    registry: RegistryDep,
    principal: CurrentPrincipal,
    region_prefix: Annotated[str | None, Query(pattern=r"^\d{1,6}$")] = None,
    kind: EnterpriseKind | None = None,
    tag: StoredText | None = None,
    q: Annotated[StoredText | None, Query(max_length=100, description="Part of the name.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[EnterpriseResource]:
    """Live enterprises in id order, filtered; a company key lists only its own."""
    async with registry.uow() as work:
        items = await work.enterprises.find(
            only_id=owner_of(principal),
            region_prefix=region_prefix,
            kind=None if kind is None else kind.value,
            tag=tag,
            q=q,
            after=decode_cursor(cursor),
            limit=limit + 1,
        )
    return Page[EnterpriseResource](
        items=[enterprise_resource(e) for e in items[:limit]],
        next_cursor=page_cursor(items, limit, lambda e: e.id),
    )
