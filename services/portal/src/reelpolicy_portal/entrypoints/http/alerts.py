"""``/alerts``: the company's subscriptions (create, test, pause, resume, delete, rotate
the secret) and the delivery log with replay, through notify's API.

A new or rotated secret is in the answer to that POST only: notify never shows it
again, and neither does the portal (nothing stores it; the page is ``no-store``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reelpolicy_portal.domain.alerts import (
    ALERT_TYPE_LABELS,
    ALERT_TYPES,
    CHANNELS,
    CHANNELS_BY_NAME,
    DELIVERY_STATUS_LABELS,
    SubscriptionFormError,
)
from reelpolicy_portal.domain.errors import InputRejectedError
from reelpolicy_portal.entrypoints.http.deps import (
    CsrfChecked,
    PageNotFoundError,
    PortalDep,
    SignedIn,
    SignedInDep,
    page_context,
)
from reelpolicy_portal.entrypoints.http.rendering import render
from reelpolicy_portal.handlers import alerts as use_cases

router = APIRouter(prefix="/alerts", tags=["alerts"])
STATUSES = ("pending", "delivering", "succeeded", "failed")


def _company(user: SignedIn) -> str:
    """The enterprise of a company session (an operator's has none: 404)."""
    return user.enterprise_id


def _id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise PageNotFoundError() from None


def alert_page_context(
    request: Request, portal: PortalDep, user: SignedIn, **extra: Any
) -> dict[str, Any]:
    return page_context(
        request,
        portal,
        user=user,
        alert_labels=ALERT_TYPE_LABELS,
        channels_by_name=CHANNELS_BY_NAME,
        delivery_statuses=DELIVERY_STATUS_LABELS,
        **extra,
    )


def _list_context(
    request: Request, portal: PortalDep, user: SignedIn, subscriptions: list[dict[str, Any]]
) -> dict[str, Any]:
    return alert_page_context(
        request,
        portal,
        user,
        subscriptions=subscriptions,
        channels=CHANNELS,
        alert_types=ALERT_TYPES,
        form={"channel": "webhook", "events": list(ALERT_TYPES)},
        error=None,
        notice=request.query_params.get("done"),
    )


@router.get("", response_class=HTMLResponse)
async def alerts_page(request: Request, portal: PortalDep, user: SignedInDep) -> Response:
    found = await use_cases.subscriptions_page(portal.services, user.api_key, _company(user))
    return render(request, "alerts.html", _list_context(request, portal, user, found))


@router.post("/subscriptions", dependencies=[CsrfChecked])
async def create_subscription(
    request: Request,
    portal: PortalDep,
    user: SignedInDep,
    channel: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    secret: Annotated[str, Form()] = "",
    events: Annotated[list[str] | None, Form()] = None,
    deadline_days: Annotated[str, Form()] = "",
) -> Response:
    enterprise_id = _company(user)
    form = {
        "channel": channel,
        "url": url,
        "email": email,
        "secret": secret,
        "events": events or [],
        "deadline_days": deadline_days,
    }
    try:
        created = await use_cases.subscribe(portal.services, user.api_key, enterprise_id, form)
    except (SubscriptionFormError, InputRejectedError) as exc:
        found = await use_cases.subscriptions_page(portal.services, user.api_key, enterprise_id)
        context = _list_context(request, portal, user, found)
        # the robot's secret is never sent back into the page
        context["form"] = {**form, "secret": ""}
        if isinstance(exc, SubscriptionFormError):
            context["error"] = {"field": exc.field, "message": exc.message, "translate": True}
        else:
            context["error"] = {"field": None, "message": exc.detail, "translate": False}
        return render(request, "alerts.html", context, status_code=400)
    if not created.get("secret"):  # a group robot: signed with its platform's secret
        return _back(str(created["id"]), "created")
    return render(
        request,
        "alert_secret.html",
        alert_page_context(request, portal, user, subscription=created, secret=created["secret"]),
        status_code=201,
    )


@router.get("/subscriptions/{subscription_id}", response_class=HTMLResponse)
async def subscription_page(
    request: Request, portal: PortalDep, user: SignedInDep, subscription_id: str
) -> Response:
    _company(user)
    subscription, log = await use_cases.subscription_page(
        portal.services, user.api_key, _id(subscription_id)
    )
    return render(
        request,
        "alert_subscription.html",
        alert_page_context(
            request,
            portal,
            user,
            subscription=subscription,
            log=log,
            notice=request.query_params.get("done"),
        ),
    )


def _back(subscription_id: str, done: str) -> Response:
    return RedirectResponse(f"/alerts/subscriptions/{subscription_id}?done={done}", 303)


@router.post("/subscriptions/{subscription_id}/test", dependencies=[CsrfChecked])
async def send_test(portal: PortalDep, user: SignedInDep, subscription_id: str) -> Response:
    _company(user)
    await portal.services.send_test(user.api_key, _id(subscription_id))
    return _back(subscription_id, "test")


@router.post("/subscriptions/{subscription_id}/pause", dependencies=[CsrfChecked])
async def pause(portal: PortalDep, user: SignedInDep, subscription_id: str) -> Response:
    _company(user)
    await use_cases.set_paused(portal.services, user.api_key, _id(subscription_id), paused=True)
    return _back(subscription_id, "paused")


@router.post("/subscriptions/{subscription_id}/resume", dependencies=[CsrfChecked])
async def resume(portal: PortalDep, user: SignedInDep, subscription_id: str) -> Response:
    _company(user)
    await use_cases.set_paused(portal.services, user.api_key, _id(subscription_id), paused=False)
    return _back(subscription_id, "resumed")


@router.post("/subscriptions/{subscription_id}/delete", dependencies=[CsrfChecked])
async def delete(portal: PortalDep, user: SignedInDep, subscription_id: str) -> Response:
    _company(user)
    await portal.services.delete_subscription(user.api_key, _id(subscription_id))
    return RedirectResponse("/alerts?done=deleted", 303)


@router.post("/subscriptions/{subscription_id}/rotate-secret", dependencies=[CsrfChecked])
async def rotate_secret(
    request: Request, portal: PortalDep, user: SignedInDep, subscription_id: str
) -> Response:
    _company(user)
    try:
        rotated = await portal.services.rotate_secret(user.api_key, _id(subscription_id))
    except InputRejectedError:  # 409: a group robot's secret is its platform's
        return _back(subscription_id, "no-secret")
    subscription = await portal.services.subscription(user.api_key, _id(subscription_id))
    return render(
        request,
        "alert_secret.html",
        alert_page_context(
            request,
            portal,
            user,
            subscription=subscription,
            secret=rotated["secret"],
            previous_until=rotated["previous_secret_expires_at"],
        ),
    )


@router.get("/deliveries", response_class=HTMLResponse)
async def delivery_log(request: Request, portal: PortalDep, user: SignedInDep) -> Response:
    _company(user)
    status = request.query_params.get("status")
    status = status if status in STATUSES else None
    log = await use_cases.delivery_log(portal.services, user.api_key, status)
    return render(
        request,
        "alert_deliveries.html",
        alert_page_context(
            request,
            portal,
            user,
            log=log,
            status=status,
            statuses=STATUSES,
            notice=request.query_params.get("done"),
        ),
    )


@router.post("/deliveries/{delivery_id}/replay", dependencies=[CsrfChecked])
async def replay(portal: PortalDep, user: SignedInDep, delivery_id: str) -> Response:
    _company(user)
    try:
        await portal.services.replay_delivery(user.api_key, _id(delivery_id))
    except InputRejectedError:  # 409: it is not failed (any more)
        return RedirectResponse("/alerts/deliveries?done=not-replayed", 303)
    return RedirectResponse("/alerts/deliveries?done=replayed", 303)
