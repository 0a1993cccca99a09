"""What a page answers when something is missing, refused or down: a page, not JSON."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from reelpolicy_portal.domain.errors import KeyRefusedError, NotFoundError, ServiceUnavailableError
from reelpolicy_portal.entrypoints.http.deps import (
    CsrfRejectedError,
    PageNotFoundError,
    SignInRequiredError,
    clear_session_cookie,
    session_id_of,
)
from reelpolicy_portal.entrypoints.http.rendering import render

log = logging.getLogger(__name__)


def _error_page(request: Request, status_code: int, kind: str) -> Response:
    return render(
        request, "error.html", {"kind": kind, "status_code": status_code}, status_code=status_code
    )


def install_page_errors(app: FastAPI) -> None:
    async def sign_in_required(request: Request, _: Exception) -> Response:
        return RedirectResponse("/sign-in", status_code=303)

    async def key_refused(request: Request, _: Exception) -> Response:
        """The session's key was revoked meanwhile: the session ends with it."""
        portal = request.app.state.portal
        session_id = session_id_of(request, portal)
        if session_id is not None:
            await portal.sessions().delete(session_id)
        response = RedirectResponse("/sign-in", status_code=303)
        clear_session_cookie(response)
        return response

    async def not_found(request: Request, _: Exception) -> Response:
        return _error_page(request, 404, "not_found")

    async def csrf_rejected(request: Request, _: Exception) -> Response:
        return _error_page(request, 403, "csrf")

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("a service did not answer: %s", exc)
        return _error_page(request, 503, "unavailable")

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        if code == 404:
            return _error_page(request, 404, "not_found")
        return _error_page(request, code, "other")

    app.add_exception_handler(SignInRequiredError, sign_in_required)
    app.add_exception_handler(KeyRefusedError, key_refused)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(PageNotFoundError, not_found)
    app.add_exception_handler(CsrfRejectedError, csrf_rejected)
    app.add_exception_handler(ServiceUnavailableError, unavailable)
    app.add_exception_handler(HTTPException, http_error)
