"""``/feeds``: a company's secret feed address (minted, shown once, revocable), and the
feeds behind it: ``/feeds/{token}/deadlines.ics`` and ``/feeds/{token}/changes.atom``.

A calendar app or feed reader has no session: the token in the address is the whole
credential, so it is random, stored only hashed, and never shown again after minting.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from reelpolicy_portal.domain.eligibility import Row
from reelpolicy_portal.domain.errors import KeyRefusedError, NotFoundError
from reelpolicy_portal.domain.money import cny
from reelpolicy_portal.entrypoints.http import labels
from reelpolicy_portal.entrypoints.http.deps import (
    CsrfChecked,
    PortalDep,
    SignedIn,
    SignedInDep,
    page_context,
)
from reelpolicy_portal.entrypoints.http.rendering import gettext, render, request_locale
from reelpolicy_portal.handlers import feeds as use_cases
from reelpolicy_portal.handlers.feeds import Describe, FeedNotFoundError

router = APIRouter(prefix="/feeds", tags=["feeds"])
CALENDAR = "text/calendar; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"


def _site(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _addresses(request: Request, token: str) -> dict[str, str]:
    base = f"{_site(request)}/feeds/{token}"
    return {"deadlines": f"{base}/deadlines.ics", "changes": f"{base}/changes.atom"}


async def _page(
    request: Request, portal: PortalDep, user: SignedIn, **extra: Any
) -> dict[str, Any]:
    since = await portal.feed_tokens().live_since(user.enterprise_id)
    return page_context(
        request,
        portal,
        user=user,
        active="feeds",
        since=since,
        addresses=None,
        link_session=user.session.link_key_id is not None,
        notice=request.query_params.get("done"),
        **extra,
    )


@router.get("", response_class=HTMLResponse)
async def feeds_page(request: Request, portal: PortalDep, user: SignedInDep) -> Response:
    return render(request, "feeds.html", await _page(request, portal, user))


@router.post("/mint", dependencies=[CsrfChecked])
async def mint(request: Request, portal: PortalDep, user: SignedInDep) -> Response:
    token = await portal.feed_tokens().mint(
        enterprise_id=user.enterprise_id, api_key=user.api_key, locale=request_locale(request)
    )
    context = await _page(request, portal, user)
    context["addresses"] = _addresses(request, token)
    return render(request, "feeds.html", context, status_code=201)


@router.post("/revoke", dependencies=[CsrfChecked])
async def revoke(portal: PortalDep, user: SignedInDep) -> Response:
    await portal.feed_tokens().revoke(user.enterprise_id)
    return RedirectResponse("/feeds?done=revoked", status_code=303)


def _describe(locale: str) -> Describe:
    def describe(row: Row, entry: dict[str, Any]) -> str:
        before = entry.get("previous_status")
        text = "{subject}: {before} → {after}".format(
            subject=gettext(locale, labels.subject(row.subject_type)),
            before=gettext(locale, labels.status(before)) if before else gettext(locale, "new"),
            after=gettext(locale, labels.status(str(entry["status"]))),
        )
        amount = entry.get("amount_cny")
        return text if amount is None else f"{text} ({cny(int(amount), locale)})"

    return describe


NOT_A_FEED = PlainTextResponse("no feed at this address", status_code=404)


@router.get("/{token}/deadlines.ics")
async def deadline_calendar(request: Request, portal: PortalDep, token: str) -> Response:
    try:
        access = await use_cases.open_feed(portal.feed_tokens(), token)
        body = await use_cases.deadlines(portal.services, access, site=_site(request))
    except (FeedNotFoundError, KeyRefusedError, NotFoundError):
        return NOT_A_FEED
    return Response(body, media_type=CALENDAR)


@router.get("/{token}/changes.atom")
async def changes_feed(request: Request, portal: PortalDep, token: str) -> Response:
    try:
        access = await use_cases.open_feed(portal.feed_tokens(), token)
        body = await use_cases.changes(
            portal.services,
            access,
            site=_site(request),
            feed_url=str(request.url),
            describe=_describe(access.locale),
        )
    except (FeedNotFoundError, KeyRefusedError, NotFoundError):
        return NOT_A_FEED
    return Response(body, media_type=ATOM)
