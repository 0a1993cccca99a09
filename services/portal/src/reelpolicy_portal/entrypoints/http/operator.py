"""``/operator``: the operator's pages (an operator key's session; a company's gets 404):
failing endpoints and disabled subscriptions, dead letters, the policy simulation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from reelpolicy_portal.domain.money import cny, number
from reelpolicy_portal.domain.simulation import MAX_DRAFT_BYTES, DraftRejectedError, bars
from reelpolicy_portal.entrypoints.http.alerts import alert_page_context
from reelpolicy_portal.entrypoints.http.deps import (
    CsrfChecked,
    PageNotFoundError,
    PortalDep,
    SignedIn,
    SignedInDep,
)
from reelpolicy_portal.entrypoints.http.rendering import gettext, render, request_locale
from reelpolicy_portal.handlers import operations

router = APIRouter(prefix="/operator", tags=["operator"])


def _operator(user: SignedIn) -> SignedIn:
    if user.session.role != "operator":
        raise PageNotFoundError()
    return user


@router.get("", response_class=HTMLResponse)
async def endpoints_page(request: Request, portal: PortalDep, user: SignedInDep) -> Response:
    health = await operations.endpoint_health(portal.services, _operator(user).api_key)
    return render(
        request,
        "operator_endpoints.html",
        alert_page_context(request, portal, user, health=health, active="operator"),
    )


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters_page(request: Request, portal: PortalDep, user: SignedInDep) -> Response:
    _operator(user)
    waiting = await portal.services.dead_letters()
    return render(
        request,
        "operator_dead_letters.html",
        alert_page_context(request, portal, user, waiting=waiting, active="operator"),
    )


def _simulation_context(
    request: Request, portal: PortalDep, user: SignedIn, **extra: Any
) -> dict[str, Any]:
    shown: dict[str, Any] = {"result": None, "problems": None, "charts": None, "filename": ""}
    shown.update(extra)
    return alert_page_context(
        request, portal, user, active="operator", max_bytes=MAX_DRAFT_BYTES, **shown
    )


@router.get("/simulate", response_class=HTMLResponse)
async def simulation_form(request: Request, portal: PortalDep, user: SignedInDep) -> Response:
    _operator(user)
    return render(request, "operator_simulate.html", _simulation_context(request, portal, user))


def _charts(result: dict[str, Any], locale: str) -> dict[str, Any]:
    """The two bar charts: subjects by kind of change, and payout against the fund."""
    impact = result["impact"]

    def label(text: str) -> str:
        return gettext(locale, text)

    def count(value: int) -> str:
        return number(value, locale)

    subjects = bars(
        [
            (label("Gained"), int(impact["newly_eligible"]), count(impact["newly_eligible"])),
            (label("Lost"), int(impact["no_longer_eligible"]), count(impact["no_longer_eligible"])),
            (
                label("Amount changed"),
                int(impact["amount_changed"]),
                count(impact["amount_changed"]),
            ),
        ]
    )
    money = [(label("Total payout"), int(impact["total_potential_cny"]))]
    if impact.get("fund_budget_cny") is not None:
        money.append((label("Fund budget"), int(impact["fund_budget_cny"])))
    if impact.get("fund_committed_cny") is not None:
        money.append((label("Fund committed"), int(impact["fund_committed_cny"])))
    payout = bars([(name, value, cny(value, locale)) for name, value in money])
    return {"subjects": subjects, "payout": payout}


@router.post("/simulate", dependencies=[CsrfChecked])
async def simulate(
    request: Request,
    portal: PortalDep,
    user: SignedInDep,
    draft: Annotated[UploadFile | None, File()] = None,
) -> Response:
    _operator(user)
    upload = b"" if draft is None else await draft.read(MAX_DRAFT_BYTES + 1)
    try:
        result = await operations.simulate(portal.services, user.api_key, upload)
    except DraftRejectedError as exc:
        context = _simulation_context(request, portal, user, problems=exc.problems)
        return render(request, "operator_simulate.html", context, status_code=400)
    context = _simulation_context(
        request,
        portal,
        user,
        result=result,
        charts=_charts(result, request_locale(request)),
        filename=draft.filename if draft else "",
    )
    return render(request, "operator_simulate.html", context)
