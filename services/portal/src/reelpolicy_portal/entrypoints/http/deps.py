"""What every page needs: the portal, the signed-in session, the CSRF check.

The session cookie holds a random session id signed with ``PORTAL_SESSION_SECRET``
(HttpOnly, SameSite=Lax, Secure with ``PORTAL_SECURE_COOKIES``); the session itself is
in the database. Every POST form carries a CSRF token bound to the session id (or,
before sign-in, to a random value in a cookie of its own: see
:func:`reelpolicy_portal.domain.sessions.csrf_token`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Form, Request, Response
from itsdangerous import BadSignature, TimestampSigner

from reelpolicy_portal.bootstrap import Portal
from reelpolicy_portal.domain.sessions import Session, csrf_token, csrf_valid
from reelpolicy_portal.entrypoints.http.rendering import PRESESSION_COOKIE

SESSION_COOKIE = "rp_session"


class SignInRequiredError(Exception):
    """No live session: the page answers with the sign-in form's address."""


class CsrfRejectedError(Exception):
    """A POST without the token of this browser's session."""


class PageNotFoundError(Exception):
    """Not there, or not this company's: the same 404 page for both."""


async def get_portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


PortalDep = Annotated[Portal, Depends(get_portal)]


def signer(portal: Portal) -> TimestampSigner:
    secret = portal.settings.portal_session_secret.get_secret_value()
    return TimestampSigner(secret, salt="reelpolicy-portal-session")


def session_id_of(request: Request, portal: Portal) -> str | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    max_age = int(portal.settings.portal_session_hours * 3600)
    try:
        return signer(portal).unsign(cookie, max_age=max_age).decode()
    except BadSignature:
        return None


@dataclass(frozen=True)
class SignedIn:
    session_id: str
    session: Session

    @property
    def enterprise_id(self) -> str:
        if self.session.enterprise_id is None:  # an operator's session
            raise PageNotFoundError()
        return self.session.enterprise_id

    @property
    def api_key(self) -> str:
        return self.session.api_key


async def signed_in(request: Request, portal: PortalDep) -> SignedIn:
    session_id = session_id_of(request, portal)
    session = None if session_id is None else await portal.sessions().get(session_id)
    if session_id is None or session is None:
        raise SignInRequiredError()
    return SignedIn(session_id, session)


SignedInDep = Annotated[SignedIn, Depends(signed_in)]


def set_session_cookie(response: Response, portal: Portal, session_id: str) -> None:
    s = portal.settings
    response.set_cookie(
        SESSION_COOKIE,
        signer(portal).sign(session_id).decode(),
        max_age=int(s.portal_session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=s.portal_secure_cookies,
        path="/",
    )
    response.delete_cookie(PRESESSION_COOKIE, path="/")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _csrf_secret(portal: Portal) -> bytes:
    return portal.settings.portal_session_secret.get_secret_value().encode()


def csrf_binding(request: Request, portal: Portal) -> str | None:
    """What this browser's CSRF token is bound to: its session, else its pre-session."""
    return session_id_of(request, portal) or request.cookies.get(PRESESSION_COOKIE)


def form_token(request: Request, portal: Portal) -> tuple[str, str | None]:
    """The token for the forms of the page being rendered, and before sign-in the new
    pre-session value it is bound to (which :func:`rendering.render` sets as a cookie)."""
    binding = csrf_binding(request, portal)
    new = None
    if binding is None:
        binding = new = secrets.token_urlsafe(24)
    return csrf_token(_csrf_secret(portal), binding), new


async def checked_form(
    request: Request, portal: PortalDep, csrf_token: Annotated[str, Form()] = ""
) -> None:
    """The dependency of every POST route: 403 unless the form carries this browser's
    token."""
    if not csrf_valid(_csrf_secret(portal), csrf_binding(request, portal), csrf_token):
        raise CsrfRejectedError()


CsrfChecked = Depends(checked_form)


def page_context(request: Request, portal: Portal, **extra: Any) -> dict[str, Any]:
    token, presession = form_token(request, portal)
    return {"csrf_token": token, "presession": presession, **extra}
