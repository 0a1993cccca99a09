"""``/unsubscribe/{token}``: the link in every alert e-mail (no API key: the token is it).

RFC 8058: ``GET`` never changes anything (mail scanners follow links) and shows a
confirmation page whose form POSTs back; ``POST`` (the form, or a mail client's one-click
``List-Unsubscribe=One-Click``) pauses the subscription. Both answer in the
subscription's locale; an unknown or forged token is a 404 page.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from reelpolicy_notify.domain.rendering import DEFAULT_LOCALE, render_unsubscribe_page
from reelpolicy_notify.domain.unsubscribe import subscription_of_token
from reelpolicy_notify.entrypoints.http.deps import NotifyDep
from reelpolicy_notify.handlers import subscriptions as use_cases

# Pages for an e-mail's recipient, not part of the JSON API: left out of its OpenAPI
# document (whose every error is problem details; these answer HTML).
router = APIRouter(prefix="/unsubscribe", include_in_schema=False)

_UNKNOWN = HTMLResponse(
    render_unsubscribe_page(locale=DEFAULT_LOCALE, state="unknown"), status_code=404
)


@router.get("/{token}", response_class=HTMLResponse, summary="Confirm unsubscribing (no change)")
async def confirm(token: str, notify: NotifyDep) -> HTMLResponse:
    subscription_id = subscription_of_token(token, key=notify.unsubscribe_key())
    if subscription_id is None:
        return _UNKNOWN
    found = await use_cases.get_subscription_for_recipient(
        uow=notify.uow, subscription_id=subscription_id
    )
    if found is None:
        return _UNKNOWN
    page = render_unsubscribe_page(
        locale=found.locale, state="confirm", email=found.email or "", action=token
    )
    return HTMLResponse(page)


@router.post("/{token}", response_class=HTMLResponse, summary="Unsubscribe (one-click)")
async def unsubscribe(token: str, notify: NotifyDep) -> HTMLResponse:
    subscription_id = subscription_of_token(token, key=notify.unsubscribe_key())
    if subscription_id is None:
        return _UNKNOWN
    paused = await use_cases.unsubscribe(uow=notify.uow, subscription_id=subscription_id)
    if paused is None:
        return _UNKNOWN
    page = render_unsubscribe_page(locale=paused.locale, state="done", email=paused.email or "")
    return HTMLResponse(page)
