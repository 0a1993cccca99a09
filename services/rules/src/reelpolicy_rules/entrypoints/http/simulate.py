"""``POST /v1/simulate``: the impact of a draft policy on the current projection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from reelpolicy_common.http import ApiError
from reelpolicy_common.http.authenticate import OperatorPrincipal
from reelpolicy_common.http.policy_documents import (
    policy_document_body,
    policy_document_responses,
    policy_refused,
)
from reelpolicy_policy import MalformedBodyError, PolicyValidationError, load_policy_text
from reelpolicy_rules.entrypoints.http.deps import RulesDep, SimulatorDep

router = APIRouter(prefix="/v1", tags=["eligibility"])


@router.post(
    "/simulate",
    summary="Impact of a draft policy on the current projection (no events)",
    description="The body is a draft policy document (JSON), published as a bare JSON"
    " object: the policy language (its JSON Schema at ingest's `GET /v1/policies/schema`,"
    " then cross-references and value types per field) is checked here and answered 400.",
    responses=policy_document_responses(
        refused=policy_refused("The draft", "the policy JSON Schema"),
        not_an_object="The body is not a JSON object (not JSON text, or another JSON value)",
    ),
    openapi_extra=policy_document_body(description="A policy document (JSON)."),
)
async def simulate(
    request: Request, rules: RulesDep, simulator: SimulatorDep, _: OperatorPrincipal
) -> dict[str, Any]:
    # The body is read here, not by FastAPI: its parser answers an undocumented 400 for
    # text that is not UTF-8 or nests past the interpreter's recursion limit.
    try:
        draft = load_policy_text(await request.body(), "application/json")
    except PolicyValidationError as exc:
        details: list[dict[str, Any]] = [
            {"field": e["path"], "message": e["message"]} for e in exc.errors
        ]
        status = 422 if isinstance(exc, MalformedBodyError) else 400
        detail = "not a JSON object" if status == 422 else "invalid policy document"
        raise ApiError(status, detail, details=details) from None
    today = rules.today()
    report = await simulator.simulate(
        draft=draft, today=today, sample_size=rules.settings.simulate_sample_size
    )
    fund = report.fund
    return {
        "policy_id": draft.id,
        "today": today.isoformat(),
        "impact": {
            **report.counts.__dict__,
            "changed": report.changed,
            "fund_budget_cny": None if fund is None else fund.budget_cny,
            "fund_committed_cny": None if fund is None else fund.committed_cny,
            "fund_exhausted": False if fund is None else fund.exhausted,
        },
        "sample": report.sample,
    }
