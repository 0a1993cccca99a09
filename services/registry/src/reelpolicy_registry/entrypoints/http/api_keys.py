"""``/v1/api-keys``: issue, list and revoke API keys.

Operators do everything; a company key may revoke its own enterprise's keys (the
portal signs out by revoking its session key), and nothing else here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from reelpolicy_common.auth import Role
from reelpolicy_common.http import problem_example, problem_responses
from reelpolicy_common.http.authenticate import CurrentPrincipal, OperatorPrincipal
from reelpolicy_contracts.storable import StoredText
from reelpolicy_registry.domain.api_keys import ApiKeyRecord
from reelpolicy_registry.entrypoints.http.deps import RegistryDep, owner_of
from reelpolicy_registry.entrypoints.http.errors import call
from reelpolicy_registry.entrypoints.http.schemas import BAD_JSON
from reelpolicy_registry.handlers import api_keys as use_cases

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


class OperatorKeyRequest(BaseModel):
    """An operator key: bound to no enterprise."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["operator"]
    enterprise_id: None = Field(default=None, description="An operator key has none.")
    label: StoredText | None = Field(default=None, max_length=200)


class CompanyKeyRequest(BaseModel):
    """A company key: bound to one live enterprise."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["company"]
    enterprise_id: StoredText = Field(description="The live enterprise the key acts for.")
    label: StoredText | None = Field(default=None, max_length=200)


IssueKeyRequest = Annotated[OperatorKeyRequest | CompanyKeyRequest, Field(discriminator="role")]


class IssuedKeyResponse(BaseModel):
    key_id: str
    key: str = Field(description="The key itself: shown this once, stored only hashed.")
    role: Role
    enterprise_id: str | None
    label: str | None


class ApiKeyResource(BaseModel):
    key_id: str
    role: Role
    enterprise_id: str | None
    label: str | None
    created_at: datetime
    revoked: bool


def _resource(k: ApiKeyRecord) -> ApiKeyResource:
    return ApiKeyResource(
        key_id=k.key_id,
        role=k.role,
        enterprise_id=k.enterprise_id,
        label=k.label,
        created_at=k.created_at,
        revoked=k.revoked,
    )


@router.post(
    "",
    status_code=201,
    response_model=IssuedKeyResponse,
    responses=problem_responses(
        403,
        descriptions={
            400: BAD_JSON,
            404: "No live enterprise has the company key's `enterprise_id`",
            422: "The body does not match its schema (e.g. a company key without"
            " `enterprise_id`, an operator key with one)",
        },
        examples={
            422: problem_example(
                422, "enterprise_id: Field required", ("enterprise_id", "Field required")
            )
        },
    ),
)
async def issue_key(
    body: IssueKeyRequest, registry: RegistryDep, _: OperatorPrincipal
) -> IssuedKeyResponse:
    """Issue a key; the answer shows it once. Every service learns of it by event.

    A ``company`` key needs ``enterprise_id`` (a live enterprise, else 404); an
    ``operator`` key must not have one (422 naming ``enterprise_id``).
    """
    issued = await call(
        use_cases.issue_api_key(
            uow=registry.uow,
            secret_key=registry.settings.reelpolicy_secret_key.get_secret_value(),
            role=body.role,
            enterprise_id=body.enterprise_id,
            label=body.label,
        )
    )
    return IssuedKeyResponse(
        key_id=issued.key_id,
        key=issued.key,
        role=body.role,
        enterprise_id=body.enterprise_id,
        label=body.label,
    )


@router.get("", response_model=list[ApiKeyResource], responses=problem_responses(403))
async def list_keys(registry: RegistryDep, _: OperatorPrincipal) -> list[ApiKeyResource]:
    """Every key (revoked ones too), without secrets."""
    async with registry.uow() as work:
        return [_resource(k) for k in await work.api_keys.find()]


@router.delete(
    "/{key_id}",
    response_model=ApiKeyResource,
    responses=problem_responses(
        404,
        descriptions={
            404: "No such key, or (a company caller) not a key of the caller's enterprise"
        },
        examples={
            404: problem_example(
                404, "api key 3f9a1c2b7d4e not found", ("id", "api key 3f9a1c2b7d4e not found")
            )
        },
    ),
)
async def revoke_key(
    key_id: Annotated[StoredText, Path(max_length=64)],
    registry: RegistryDep,
    principal: CurrentPrincipal,
) -> ApiKeyResource:
    """Revoke a key (idempotent); every service stops accepting it once it sees the event.

    An operator revokes any key; a company key only its own enterprise's keys, itself
    included (how the portal signs out); any other key is 404 to it.
    """
    revoked = await call(
        use_cases.revoke_api_key(uow=registry.uow, key_id=key_id, owner=owner_of(principal))
    )
    return _resource(revoked)
