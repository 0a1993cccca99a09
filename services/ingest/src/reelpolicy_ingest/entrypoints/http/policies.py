"""Policy documents: ``/v1/policies``."""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from reelpolicy_common.http import ApiError, Page, problem_example, problem_responses
from reelpolicy_common.http.authenticate import CurrentPrincipal, OperatorPrincipal
from reelpolicy_common.http.policy_documents import (
    policy_document_body,
    policy_document_responses,
    policy_refused,
)
from reelpolicy_contracts.storable import PgInt, StoredText, unstorable_reason
from reelpolicy_ingest import handlers
from reelpolicy_ingest.domain import DocumentTooLargeError, StoredPolicy, check_yaml_expansion
from reelpolicy_ingest.entrypoints.http.deps import IngestDep
from reelpolicy_policy import (
    MalformedBodyError,
    Policy,
    PolicyValidationError,
    load_policy_text,
    policy_json_schema,
)

router = APIRouter(prefix="/v1/policies", tags=["policies"])

PARSE_THREADS = 2
"""Documents parsed and validated at once; more wait their turn. Parsing runs in these
threads, not on the event loop, so a large document never stalls other requests."""
_parsers = ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="policy-parse")


def _parse_document(body: bytes, content_type: str) -> Policy:
    if "yaml" in content_type:
        check_yaml_expansion(body)
    return load_policy_text(body, content_type)


EXAMPLE_DOCUMENT: dict[str, Any] = {
    "id": "jz-industrial-park",
    "title": {"zh": "荆州短剧产业园", "en": "Jingzhou short-drama park"},
    "issuer": {"name": "荆州市", "level": "municipal", "region_code": "421000"},
    "sources": [{"fact": "F-JZ-01"}],
    "effective": {"from": "2024-01-01"},
    "subject": "enterprise",
    "criteria": {"field": "enterprise.region_code", "op": "within", "value": "4210"},
    "benefits": [
        {
            "id": "project_support",
            "kind": "project_subsidy",
            "basis": "discretionary",
            "max_amount_cny": 1000000,
        }
    ],
}

PolicyId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,80}$", description="Policy slug.")]


class PolicySummary(BaseModel):
    id: str
    version: int
    title: dict[str, str]
    sources: list[Any]
    effective: dict[str, Any]
    revoked: bool = False


class SubmitResponse(BaseModel):
    id: str
    version: int
    created: bool = Field(description="False when the document equals the latest version.")
    revoked: bool = Field(
        default=False,
        description="The policy stays revoked: an identical document does not reinstate it;"
        " a changed one makes a new, live version.",
    )
    document: dict[str, Any]


class RevokeResponse(BaseModel):
    id: str
    version: int
    revoked: bool


def _summary(p: StoredPolicy) -> PolicySummary:
    d = p.document
    return PolicySummary(
        id=p.policy_id,
        version=p.version,
        title=d["title"],
        sources=d["sources"],
        effective=d["effective"],
        revoked=p.revoked,
    )


def _validation_error(exc: PolicyValidationError) -> ApiError:
    """422 for a body that breaks the published request schema (not a JSON object, or
    an unsupported media type); 400 for a document the policy language refuses."""
    details: list[dict[str, Any]] = [
        {"field": e["path"], "message": e["message"]} for e in exc.errors
    ]
    if isinstance(exc, MalformedBodyError):
        return ApiError(422, "not a policy document", details=details)
    return ApiError(400, "invalid policy document", details=details)


@router.get("/schema", summary="JSON Schema of policy documents")
async def get_schema(_: CurrentPrincipal) -> dict[str, Any]:
    return policy_json_schema()


@router.post(
    "",
    response_model=SubmitResponse,
    status_code=201,
    summary="Store a policy document (JSON, or YAML with Content-Type: application/yaml)",
    description="The request schema is a JSON object (or YAML text); the policy language"
    " (its JSON Schema at `GET /v1/policies/schema`, then cross-references and value types"
    " per field) is checked by the server and answered 400. Limits (413 naming"
    " `document`): the body at most `MAX_DOCUMENT_BYTES`"
    " (256 KiB by default), its canonical JSON at most 512 KiB, and a YAML document at"
    " most 200,000 nodes once its aliases are expanded.",
    responses={
        200: {"description": "Identical to the latest version: nothing stored"},
        **policy_document_responses(
            refused=policy_refused("The document", "the JSON Schema at `GET /v1/policies/schema`"),
            more={
                409: "`version` is not the next one (`context.next_version` says which is)",
                413: "The document is over a size limit (see above)",
            },
            not_an_object="The body is not a JSON object (JSON) or the media type is neither"
            " JSON nor YAML",
        ),
    },
    openapi_extra=policy_document_body(example=EXAMPLE_DOCUMENT, also_yaml=True),
)
async def submit(
    request: Request, response: Response, ingest: IngestDep, _: OperatorPrincipal
) -> SubmitResponse:
    body = await request.body()
    if len(body) > ingest.settings.max_document_bytes:
        raise ApiError(
            413,
            f"document larger than {ingest.settings.max_document_bytes} bytes",
            field="document",
        )
    content_type = request.headers.get("content-type", "application/json")
    loop = asyncio.get_running_loop()
    try:
        policy = await loop.run_in_executor(_parsers, _parse_document, body, content_type)
        result = await handlers.submit_policy(uow=ingest.uow, policy=policy)
    except DocumentTooLargeError as exc:
        raise ApiError(413, exc.message, field="document") from None
    except PolicyValidationError as exc:
        raise _validation_error(exc) from None
    except handlers.VersionConflictError as exc:
        raise ApiError(
            409, str(exc), field="version", extra={"next_version": exc.next_version}
        ) from None
    if not result.created:
        response.status_code = 200
    p = result.policy
    return SubmitResponse(
        id=p.policy_id,
        version=p.version,
        created=result.created,
        revoked=p.revoked,
        document=p.document,
    )


@router.get(
    "",
    response_model=Page[PolicySummary],
    summary="Latest version of every policy",
    responses=problem_responses(
        descriptions={400: "`cursor` is not the `next_cursor` of an earlier page"},
        examples={400: problem_example(400, "malformed cursor", ("cursor", "malformed cursor"))},
    ),
)
async def list_policies(
    ingest: IngestDep,
    _: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[
        StoredText | None, Query(description="next_cursor of the previous page")
    ] = None,
) -> Page[PolicySummary]:
    after = None
    if cursor:
        try:
            after = base64.urlsafe_b64decode(cursor.encode()).decode()
        except ValueError:
            raise ApiError(400, "malformed cursor", field="cursor") from None
        if unstorable_reason(after) is not None:  # never a policy id: no page gave it
            raise ApiError(400, "malformed cursor", field="cursor")
    async with ingest.uow() as work:
        items = await work.policies.list_latest(after=after, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    next_cursor = (
        base64.urlsafe_b64encode(items[-1].policy_id.encode()).decode() if more and items else None
    )
    return Page[PolicySummary](items=[_summary(p) for p in items], next_cursor=next_cursor)


NOT_FOUND_OR_REVOKED = (
    "No such policy (or version), or the policy was revoked (`DELETE`; `errors[0].context`"
    " then names its latest `version`): its documents stay stored and in the event log,"
    " the list shows it with `revoked: true`, and a changed document reinstates it"
)


def _revoked(policy: StoredPolicy) -> ApiError:
    """A revoked policy is no longer served by its id. 404, not 410 Gone: a changed
    document reinstates it, so its absence is not known to be permanent (RFC 9110)."""
    return ApiError(
        404,
        f"policy {policy.policy_id} was revoked",
        field="policy_id",
        extra={"version": policy.version},
    )


@router.get(
    "/{policy_id}",
    summary="The latest version, exactly as the schema defines it",
    responses=problem_responses(descriptions={404: NOT_FOUND_OR_REVOKED}),
)
async def get_latest(policy_id: PolicyId, ingest: IngestDep, _: CurrentPrincipal) -> dict[str, Any]:
    async with ingest.uow() as work:
        policy = await work.policies.latest(policy_id)
    if policy is None:
        raise ApiError(404, f"policy {policy_id} not found", field="policy_id")
    if policy.revoked:
        raise _revoked(policy)
    return policy.document


@router.get(
    "/{policy_id}/versions/{version}",
    summary="One stored version",
    responses=problem_responses(descriptions={404: NOT_FOUND_OR_REVOKED}),
)
async def get_version(
    policy_id: PolicyId,
    version: Annotated[PgInt, Path(ge=1)],
    ingest: IngestDep,
    _: CurrentPrincipal,
) -> dict[str, Any]:
    async with ingest.uow() as work:
        policy = await work.policies.version(policy_id, version)
    if policy is None:
        raise ApiError(404, f"policy {policy_id} has no version {version}", field="version")
    if policy.revoked:
        raise _revoked(policy)
    return policy.document


@router.delete(
    "/{policy_id}",
    response_model=RevokeResponse,
    summary="Revoke (an event, not erasure)",
    responses=problem_responses(403, 404),
)
async def revoke(
    policy_id: PolicyId,
    ingest: IngestDep,
    _: OperatorPrincipal,
    reason: Annotated[StoredText | None, Query(max_length=500)] = None,
) -> RevokeResponse:
    try:
        policy = await handlers.revoke_policy(uow=ingest.uow, policy_id=policy_id, reason=reason)
    except handlers.PolicyNotFoundError:
        raise ApiError(404, f"policy {policy_id} not found", field="policy_id") from None
    return RevokeResponse(id=policy.policy_id, version=policy.version, revoked=True)
