"""Sign in with an API key or a one-time link; sign out; the language switch."""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from prometheus_client import Counter

from reelpolicy_portal.domain.money import LOCALES
from reelpolicy_portal.entrypoints.http.deps import (
    CsrfChecked,
    PageNotFoundError,
    PortalDep,
    clear_session_cookie,
    page_context,
    session_id_of,
    set_session_cookie,
)
from reelpolicy_portal.entrypoints.http.rendering import LANG_COOKIE, render
from reelpolicy_portal.handlers.sign_in import (
    SignInRefusedError,
    sign_in_with_key,
    sign_in_with_link,
    sign_out,
)

router = APIRouter(tags=["sign-in"])

SIGN_INS = Counter(
    "reelpolicy_portal_sign_ins_total",
    "API-key sign-ins (POST /sign-in past the CSRF check) by outcome: signed_in,"
    " refused (not a key), limited (answered 429: the client address failed"
    " PORTAL_SIGN_IN_FAILURES times within the window).",
    ["outcome"],
)
for _outcome in ("signed_in", "refused", "limited"):
    SIGN_INS.labels(_outcome)  # each series exists from the start, so increase() sees the first


def _lifetime(portal: PortalDep) -> timedelta:
    return timedelta(hours=portal.settings.portal_session_hours)


def _signed_in_redirect(portal: PortalDep, session_id: str) -> Response:
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, portal, session_id)
    return response


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, portal: PortalDep) -> Response:
    return render(request, "sign_in.html", page_context(request, portal, refused=False))


@router.post("/sign-in", dependencies=[CsrfChecked])
async def sign_in(
    request: Request, portal: PortalDep, api_key: Annotated[str, Form()] = ""
) -> Response:
    # uvicorn takes the address from X-Forwarded-For only from FORWARDED_ALLOW_IPS
    address = request.client.host if request.client else "unknown"
    now = time.monotonic()
    wait = portal.failed_sign_ins.retry_after(address, now)
    if wait is not None:
        context = page_context(request, portal, refused=False, retry_minutes=math.ceil(wait / 60))
        response = render(request, "sign_in.html", context, status_code=429)
        response.headers["Retry-After"] = str(wait)
        SIGN_INS.labels("limited").inc()
        return response
    try:
        session_id = await sign_in_with_key(
            services=portal.services,
            sessions=portal.sessions(),
            api_key=api_key,
            lifetime=_lifetime(portal),
        )
    except SignInRefusedError:
        portal.failed_sign_ins.record_failure(address, now)
        SIGN_INS.labels("refused").inc()
        context = page_context(request, portal, refused=True)
        return render(request, "sign_in.html", context, status_code=401)
    SIGN_INS.labels("signed_in").inc()
    return _signed_in_redirect(portal, session_id)


MAX_TOKEN_LENGTH = 200


@router.get("/sign-in/link", response_class=HTMLResponse)
async def sign_in_link_form(request: Request, portal: PortalDep, token: str = "") -> Response:
    """A one-time link opens a page with a button, and only that button's POST redeems it:
    mail scanners and chat apps fetch links before the person clicks, and a GET that
    redeemed would burn the token for them. (No Referer carries the token onwards:
    every page is sent with ``Referrer-Policy: no-referrer``.)"""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return _link_refused(request, portal)
    # the language switch comes back to this page, token and all
    back = f"/sign-in/link?{urlencode({'token': token})}"
    context = page_context(request, portal, token=token, lang_next=back)
    return render(request, "sign_in_link.html", context)


@router.post("/sign-in/link", dependencies=[CsrfChecked])
async def sign_in_link(
    request: Request, portal: PortalDep, token: Annotated[str, Form()] = ""
) -> Response:
    """Redeem the link and go on to a clean address (the token is kept nowhere)."""
    try:
        session_id = await sign_in_with_link(
            services=portal.services,
            sessions=portal.sessions(),
            token=token,
            lifetime=_lifetime(portal),
        )
    except SignInRefusedError:
        return _link_refused(request, portal)
    return _signed_in_redirect(portal, session_id)


def _link_refused(request: Request, portal: PortalDep) -> Response:
    context = page_context(request, portal, refused=False, link_refused=True)
    return render(request, "sign_in.html", context, status_code=404)


@router.post("/sign-out", dependencies=[CsrfChecked])
async def sign_out_route(request: Request, portal: PortalDep) -> Response:
    session_id = session_id_of(request, portal)
    if session_id is not None:
        await sign_out(services=portal.services, sessions=portal.sessions(), session_id=session_id)
    response = RedirectResponse("/sign-in", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/lang/{locale}")
async def switch_language(locale: str, portal: PortalDep, next: str = "/") -> Response:
    if locale not in LOCALES:
        raise PageNotFoundError()
    # only a path of this site: never an open redirect
    target = next if next.startswith("/") and not next.startswith(("//", "/\\")) else "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        locale,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=portal.settings.portal_secure_cookies,
        path="/",
    )
    return response
