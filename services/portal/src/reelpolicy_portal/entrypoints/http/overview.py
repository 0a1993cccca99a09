"""``/``: the overview of the signed-in company."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from reelpolicy_portal.entrypoints.http.deps import PortalDep, SignedInDep, page_context
from reelpolicy_portal.entrypoints.http.rendering import render
from reelpolicy_portal.handlers.overview import overview

router = APIRouter(tags=["overview"])


@router.get("/", response_class=HTMLResponse)
async def overview_page(request: Request, portal: PortalDep, user: SignedInDep) -> Response:
    if user.session.role == "operator":
        return render(request, "operator_home.html", page_context(request, portal, user=user))
    found = await overview(portal.services, user.api_key, user.enterprise_id)
    productions = {p["id"]: p for p in found.productions}
    return render(
        request,
        "overview.html",
        page_context(
            request,
            portal,
            user=user,
            active="overview",
            view=found,
            productions=productions,
            titles=await portal.services.policy_titles(user.api_key),
        ),
    )
