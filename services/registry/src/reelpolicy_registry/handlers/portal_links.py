"""One-time sign-in links: mint one for an enterprise, redeem it for a session key.

The rules: :mod:`reelpolicy_registry.domain.portal_links`. Redeeming claims the link
and issues the key (through :mod:`reelpolicy_registry.handlers.api_keys`, so
``api_key.changed`` leaves through the outbox) in one transaction: a link that fails
to give a key stays unused, and a link gives at most one key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from reelpolicy_registry.domain.errors import NotFoundError
from reelpolicy_registry.domain.portal_links import (
    SESSION_KEY_LABEL,
    LinkNotRedeemableError,
    MintedLink,
    RedeemedLink,
    link_token_hash,
    new_link_token,
    sign_in_url,
)
from reelpolicy_registry.handlers.api_keys import issue_company_key_in
from reelpolicy_registry.ports import UowFactory

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def mint_portal_link(
    *,
    uow: UowFactory,
    enterprise_id: str,
    portal_base_url: str,
    valid_for: timedelta,
    clock: Clock = utc_now,
) -> MintedLink:
    """A new link for a live enterprise (else not found); its token is answered once."""
    token = new_link_token()
    now = clock()
    expires_at = now + valid_for
    async with uow() as work:
        if await work.enterprises.get(enterprise_id) is None:
            raise NotFoundError("enterprise", enterprise_id, field="enterprise_id")
        await work.portal_links.add(
            token_hash=link_token_hash(token),
            enterprise_id=enterprise_id,
            created_at=now,
            expires_at=expires_at,
        )
        await work.commit()
    return MintedLink(token, sign_in_url(portal_base_url, token), expires_at)


async def redeem_portal_link(
    *, uow: UowFactory, secret_key: str, token: str, clock: Clock = utc_now
) -> RedeemedLink:
    """A new portal session key of the link's enterprise, once; else
    :class:`LinkNotRedeemableError` whatever the reason (unknown, used, expired, or its
    enterprise deleted since)."""
    token_hash = link_token_hash(token)
    async with uow() as work:
        enterprise_id = await work.portal_links.claim(token_hash, now=clock())
        if enterprise_id is None or await work.enterprises.get(enterprise_id) is None:
            raise LinkNotRedeemableError()  # leaving the unit of work rolls the claim back
        issued = await issue_company_key_in(
            work, secret_key=secret_key, enterprise_id=enterprise_id, label=SESSION_KEY_LABEL
        )
        await work.portal_links.record_key(token_hash, issued.key_id)
        await work.commit()
    return RedeemedLink(enterprise_id=enterprise_id, key_id=issued.key_id, api_key=issued.key)
