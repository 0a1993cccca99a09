"""``/v1/portal-links``: one-time sign-in links to the portal.

An operator mints a link for an enterprise; the portal redeems it (with no key: the
person opening it has none yet) for a new company key labelled as a portal session
key, which it revokes on sign-out through ``DELETE /v1/api-keys/{key_id}``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from reelpolicy_common.http import ApiError, problem_example, problem_responses, request_example
from reelpolicy_common.http.authenticate import OperatorPrincipal
from reelpolicy_contracts.storable import StoredText
from reelpolicy_registry.domain.portal_links import MAX_TOKEN_LENGTH, LinkNotRedeemableError
from reelpolicy_registry.entrypoints.http.deps import RegistryDep
from reelpolicy_registry.entrypoints.http.errors import call
from reelpolicy_registry.entrypoints.http.schemas import BAD_JSON
from reelpolicy_registry.handlers import portal_links as use_cases

router = APIRouter(prefix="/v1/portal-links", tags=["portal sign-in links"])

REDEEM_PATH = f"{router.prefix}/redeem"
"""The route a caller without a key reaches (the app lets it past authentication)."""

_NOT_REDEEMABLE = "No link has this token, or it was used, or it has expired: one answer for all"
_NO_STORE = {"Cache-Control": "no-store"}  # both answers carry a secret
_REFUSED = str(LinkNotRedeemableError())
_EXAMPLE_ID = "0193a4c2-7d1e-7c3a-9f10-5b2e8d4c6a01"
_EXAMPLE_TOKEN = "Yq3kz8mV0c2J6pQ1xT9bW4nR7sLhD5fA0eGuKiMoNwE"


class MintLinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enterprise_id: StoredText = Field(description="The live enterprise the link signs in as.")


class PortalLinkResponse(BaseModel):
    token: str = Field(description="The link's secret: shown this once, stored only hashed.")
    url: str = Field(description="The portal's sign-in page with the token: what to send.")
    expires_at: datetime = Field(description="After this the link is refused.")


class RedeemLinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH, description="The link's token.")


class RedeemedLinkResponse(BaseModel):
    enterprise_id: str
    api_key: str = Field(
        description="A new company key of the enterprise (label `portal session`): shown"
        " this once; revoke it on sign-out."
    )
    key_id: str = Field(description="The key's id, for `DELETE /v1/api-keys/{key_id}`.")


@router.post(
    "",
    status_code=201,
    response_model=PortalLinkResponse,
    openapi_extra=request_example({"enterprise_id": _EXAMPLE_ID}),
    responses=problem_responses(
        403,
        descriptions={
            400: BAD_JSON,
            404: "No live enterprise has this `enterprise_id`",
            422: "The body does not match its schema",
        },
        examples={
            404: problem_example(
                404,
                f"enterprise {_EXAMPLE_ID} not found",
                ("enterprise_id", f"enterprise {_EXAMPLE_ID} not found"),
            ),
            422: problem_example(
                422, "enterprise_id: Field required", ("enterprise_id", "Field required")
            ),
        },
    ),
)
async def mint_link(
    body: MintLinkRequest, registry: RegistryDep, response: Response, _: OperatorPrincipal
) -> PortalLinkResponse:
    """Mint a one-time sign-in link to the portal for an enterprise (operator only).

    Send ``url`` to a person of the company: opening it within the validity
    (``PORTAL_LINK_VALID_MINUTES``, 15 by default) signs them in, once.
    """
    settings = registry.settings
    minted = await call(
        use_cases.mint_portal_link(
            uow=registry.uow,
            enterprise_id=body.enterprise_id,
            portal_base_url=str(settings.portal_base_url),
            valid_for=timedelta(minutes=settings.portal_link_valid_minutes),
        )
    )
    response.headers.update(_NO_STORE)
    return PortalLinkResponse(token=minted.token, url=minted.url, expires_at=minted.expires_at)


@router.post(
    "/redeem",
    response_model=RedeemedLinkResponse,
    openapi_extra=request_example({"token": _EXAMPLE_TOKEN}),
    responses=problem_responses(
        descriptions={400: BAD_JSON, 404: _NOT_REDEEMABLE, 422: "The body is not `{token}`"},
        examples={
            404: problem_example(404, _REFUSED, ("token", _REFUSED)),
            422: problem_example(422, "token: Field required", ("token", "Field required")),
        },
    ),
)
async def redeem_link(
    body: RedeemLinkRequest, registry: RegistryDep, response: Response
) -> RedeemedLinkResponse:
    """Redeem a sign-in link for a new portal session key of its enterprise (no API key).

    A link is good once, until it expires: a second redeem, even a concurrent one,
    answers 404, exactly as an unknown or expired token does.
    """
    try:
        redeemed = await use_cases.redeem_portal_link(
            uow=registry.uow,
            secret_key=registry.settings.reelpolicy_secret_key.get_secret_value(),
            token=body.token,
        )
    except LinkNotRedeemableError as exc:
        raise ApiError(404, str(exc), field="token") from None
    response.headers.update(_NO_STORE)
    return RedeemedLinkResponse(
        enterprise_id=redeemed.enterprise_id, api_key=redeemed.api_key, key_id=redeemed.key_id
    )
