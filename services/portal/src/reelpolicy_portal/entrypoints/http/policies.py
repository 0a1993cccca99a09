"""``/policies``: the catalog with filters, and each policy's versions with what changed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from reelpolicy_portal.domain.catalog import CatalogFilter
from reelpolicy_portal.domain.money import number
from reelpolicy_portal.domain.policy_diff import Change
from reelpolicy_portal.entrypoints.http import labels
from reelpolicy_portal.entrypoints.http.deps import PortalDep, SignedInDep, page_context
from reelpolicy_portal.entrypoints.http.rendering import gettext, render, request_locale
from reelpolicy_portal.handlers.policies import catalog, versions

router = APIRouter(tags=["policies"])


def _blank(value: str | None) -> str | None:
    return value or None


@router.get("/policies", response_class=HTMLResponse)
async def policies_page(
    request: Request,
    portal: PortalDep,
    user: SignedInDep,
    region: str | None = None,
    level: str | None = None,
    kind: str | None = None,
) -> Response:
    wanted = CatalogFilter(_blank(region), _blank(level), _blank(kind))
    found = await catalog(portal.services, user.api_key, wanted)
    context = page_context(
        request, portal, user=user, active="policies", catalog=found, wanted=wanted
    )
    return render(request, "policies.html", context)


def _sentence(change: Change, locale: str) -> str:
    """The change in the page's language (codes in it named as the labels name them)."""
    values: dict[str, Any] = dict(change.values)
    if "kind" in values:
        values["kind"] = gettext(locale, labels.benefit_kind(str(values["kind"])))
    if "field" in values:
        values["field"] = gettext(locale, labels.field(str(values["field"])))
    for name, value in values.items():
        if isinstance(value, int) and not isinstance(value, bool):
            values[name] = number(value, locale)
        elif value is None:
            values[name] = "—"
    return gettext(locale, change.message) % values


@router.get("/policies/{policy_id}", response_class=HTMLResponse)
async def policy_page(
    request: Request, portal: PortalDep, user: SignedInDep, policy_id: str
) -> Response:
    found = await versions(portal.services, user.api_key, policy_id)
    locale = request_locale(request)
    sentences = {v.number: [_sentence(c, locale) for c in v.changes] for v in found}
    context = page_context(
        request,
        portal,
        user=user,
        active="policies",
        policy=found[0].document,
        versions=found,
        sentences=sentences,
    )
    return render(request, "policy.html", context)
