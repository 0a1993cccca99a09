"""``POST /v1/simulate``: the impact of a draft policy on the current projection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from reelpolicy_common.http import ApiError, problem_example, problem_responses
from reelpolicy_common.http.authenticate import OperatorPrincipal
from reelpolicy_policy import MalformedBodyError, PolicyValidationError, load_policy_text
from reelpolicy_rules.entrypoints.http.deps import RulesDep
from reelpolicy_rules.handlers.simulation import simulate_draft

router = APIRouter(prefix="/v1", tags=["eligibility"])


@router.post(
    "/simulate",
    summary="Impact of a draft policy on the current projection (no events)",
    description="The body is a draft policy document (JSON), published as a bare JSON"
    " object: the policy language (its JSON Schema at ingest's `GET /v1/policies/schema`,"
    " then cross-references and value types per field) is checked here and answered 400.",
    responses=problem_responses(
        403,
        descriptions={
            400: "The draft is not a valid policy (the policy JSON Schema, cross-references,"
            " value types per field, storable text and numbers, nesting limits): `errors`"
            " names each JSON path at fault",
            422: "The body is not a JSON object (not JSON text, or another JSON value)",
        },
        examples={
            400: problem_example(
                400,
                "invalid policy document",
                ("$.criteria.all[0].field", "unknown field 'production.platfroms'"),
            )
        },
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A policy document (JSON).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def simulate(request: Request, rules: RulesDep, _: OperatorPrincipal) -> dict[str, Any]:
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
    report = await simulate_draft(
        uow=rules.uow,
        cache=rules.cache,
        book=rules.book,
        draft=draft,
        today=today,
        sample_size=rules.settings.simulate_sample_size,
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
