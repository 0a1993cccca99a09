"""``/eligibility``: one row per subject and policy, the explanation as a tree, and the
forms that fill a missing field.

An open page stays current by polling ``/eligibility/rows`` (an HTML fragment of the
table's rows) every ``PORTAL_REFRESH_SECONDS``: after a saved field the registry emits
an event, rules recalculates, and the row changes in place without a reload. Polling
rather than server-sent events: the portal consumes no topic (it knows only the
services' HTTP APIs), so an event stream would itself poll rules; a plain request
works through every proxy and needs no connection held per open page, and any replica
can answer it.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reelpolicy_portal.domain.eligibility import STATUSES, Row, exclusive_choices
from reelpolicy_portal.domain.errors import InputRejectedError, VersionConflictError
from reelpolicy_portal.domain.fields import FillableField, InvalidValueError, fillable
from reelpolicy_portal.entrypoints.http.deps import (
    CsrfChecked,
    PageNotFoundError,
    PortalDep,
    SignedIn,
    SignedInDep,
    page_context,
)
from reelpolicy_portal.entrypoints.http.rendering import render
from reelpolicy_portal.handlers.eligibility import field_form, save_field
from reelpolicy_portal.handlers.overview import eligibility_rows
from reelpolicy_portal.ports import Services

router = APIRouter(tags=["eligibility"])


async def _rows(
    services: Services, user: SignedIn, *, production_id: str | None, status: str | None
) -> tuple[list[Row], dict[str, str]]:
    """The rows to show and the name of each subject (a production not the company's:
    404, like every other record of another enterprise)."""
    enterprise = await services.enterprise(user.api_key, user.enterprise_id)
    productions = await services.productions(user.api_key, user.enterprise_id)
    names = {str(enterprise["id"]): str(enterprise["name"])}
    names.update({str(p["id"]): str(p["title"]) for p in productions})
    if production_id is not None and production_id not in names:
        raise PageNotFoundError()
    rows = await eligibility_rows(services, user.api_key, user.enterprise_id)
    if production_id is not None:
        rows = [r for r in rows if r.subject_id == production_id]
    if status in STATUSES:
        rows = [r for r in rows if r.status == status]
    return rows, names


def _row_context(
    rows: list[Row], names: dict[str, str], titles: dict[str, dict[str, str]]
) -> dict[str, Any]:
    return {
        "rows": rows,
        "names": names,
        "titles": titles,
        "choices": {r.row_id: exclusive_choices(r.explanation) for r in rows},
        "fillable": fillable,
    }


@router.get("/eligibility", response_class=HTMLResponse)
async def eligibility_page(
    request: Request,
    portal: PortalDep,
    user: SignedInDep,
    production_id: str | None = None,
    status: str | None = None,
) -> Response:
    rows, names = await _rows(portal.services, user, production_id=production_id, status=status)
    query = request.url.query
    context = page_context(
        request,
        portal,
        user=user,
        active="eligibility",
        production_id=production_id,
        status=status if status in STATUSES else None,
        refresh_url="/eligibility/rows" + (f"?{query}" if query else ""),
        refresh_seconds=portal.settings.portal_refresh_seconds,
        saved=request.query_params.get("saved"),
        **_row_context(rows, names, await portal.services.policy_titles(user.api_key)),
    )
    return render(request, "eligibility.html", context)


@router.get("/eligibility/rows", response_class=HTMLResponse)
async def eligibility_rows_fragment(
    request: Request,
    portal: PortalDep,
    user: SignedInDep,
    production_id: str | None = None,
    status: str | None = None,
) -> Response:
    rows, names = await _rows(portal.services, user, production_id=production_id, status=status)
    titles = await portal.services.policy_titles(user.api_key)
    return render(request, "_rows.html", _row_context(rows, names, titles))


def _field(path: str) -> FillableField:
    found = fillable(path)
    if found is None:
        raise PageNotFoundError()
    return found


@router.get("/eligibility/fill", response_class=HTMLResponse)
async def fill_form(
    request: Request, portal: PortalDep, user: SignedInDep, field: str, subject_id: str
) -> Response:
    form = await field_form(portal.services, user.api_key, _field(field), subject_id)
    context = page_context(request, portal, user=user, active="eligibility", form=form)
    return render(request, "fill.html", context)


@router.post("/eligibility/fill", dependencies=[CsrfChecked])
async def fill(
    request: Request,
    portal: PortalDep,
    user: SignedInDep,
    field: Annotated[str, Form()],
    subject_id: Annotated[str, Form()],
    etag: Annotated[str, Form()],
    value: Annotated[str, Form()] = "",
) -> Response:
    wanted = _field(field)
    problem: dict[str, Any] = {}
    try:
        await save_field(
            portal.services,
            user.api_key,
            enterprise_id=user.enterprise_id,
            field=wanted,
            subject_id=subject_id,
            value=wanted.parse(value),
            etag=etag,
        )
    except InvalidValueError as exc:
        problem = {"invalid": str(exc)}
    except InputRejectedError as exc:
        problem = {"rejected": exc.detail}
    except VersionConflictError as exc:
        problem = {"conflict": wanted.current(exc.current)}
    if not problem:
        return RedirectResponse(f"/eligibility?saved={field}", status_code=303)
    form = await field_form(portal.services, user.api_key, wanted, subject_id)
    if "conflict" not in problem:  # keep the version the person was answering
        form = dataclasses.replace(form, etag=etag)
    context = page_context(
        request, portal, user=user, active="eligibility", form=form, entered=value, **problem
    )
    return render(request, "fill.html", context, status_code=409 if "conflict" in problem else 400)
