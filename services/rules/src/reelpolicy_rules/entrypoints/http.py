"""The rules HTTP API: ``/v1/eligibility`` (+ history) and ``/v1/simulate``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from reelpolicy_common.http import ApiError, problem_example, problem_responses
from reelpolicy_common.http.authenticate import CurrentPrincipal, OperatorPrincipal, not_found
from reelpolicy_common.storable import StoredText
from reelpolicy_policy import MalformedBodyError, PolicyValidationError, load_policy_text
from reelpolicy_rules.bootstrap import Rules
from reelpolicy_rules.handlers.bulk import plan_bulk
from reelpolicy_rules.handlers.per_subject import build_subjects, evaluate_subjects

router = APIRouter(prefix="/v1", tags=["eligibility"])


async def get_rules(request: Request) -> Rules:
    rules: Rules = request.app.state.rules
    return rules


RulesDep = Annotated[Rules, Depends(get_rules)]


class EligibilityItem(BaseModel):
    subject_type: str
    subject_id: str
    enterprise_id: str
    policy_id: str
    policy_version: int | None
    status: str = Field(description="eligible / unknown (/ ineligible with include_ineligible)")
    amount_cny: int | None = Field(description="After stacking caps and fund budgets.")
    missing_fields: list[str]
    explanation: dict[str, Any]


class EligibilityList(BaseModel):
    items: list[EligibilityItem]


class HistoryEntry(BaseModel):
    changed_at: datetime
    policy_version: int
    previous_status: str | None
    status: str
    previous_amount_cny: int | None
    amount_cny: int | None
    cause: str = Field(description="The event id that caused the change, or 'clock'.")
    event_id: str = Field(description="The eligibility.changed event emitted.")


class History(BaseModel):
    subject_id: str
    policy_id: str
    items: list[HistoryEntry]


ELIGIBILITY_EXAMPLE = {
    "items": [
        {
            "subject_type": "production",
            "subject_id": "0195f3c2-8a10-7b2e-9c44-51d0e7a3b612",
            "enterprise_id": "0195f3c2-7d7e-7c4b-9a51-3e1f2b6c8d90",
            "policy_id": "sh-yangpu-micro-drama",
            "policy_version": 3,
            "status": "eligible",
            "amount_cny": 200000,
            "missing_fields": [],
            "explanation": {"result": "eligible"},
        }
    ]
}


def _with_notes(trace: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    notes = {k: v for k, v in stored.items() if k in ("fund", "stacking", "stacking_group")}
    return {**trace, **notes}


@router.get(
    "/eligibility",
    response_model=EligibilityList,
    summary="Results of an enterprise",
    responses={
        200: {"content": {"application/json": {"example": ELIGIBILITY_EXAMPLE}}},
        **problem_responses(
            descriptions={
                400: "An operator key gave neither `enterprise_id` nor `production_id` (a"
                " company key that gives neither gets its own enterprise's results)",
                404: "No such enterprise or production, or (company key) not the caller's",
            },
            examples={
                400: problem_example(
                    400,
                    "give enterprise_id or production_id",
                    ("enterprise_id", "give enterprise_id or production_id"),
                )
            },
        ),
    },
)
async def list_eligibility(
    rules: RulesDep,
    principal: CurrentPrincipal,
    enterprise_id: StoredText | None = None,
    production_id: StoredText | None = None,
    include_ineligible: Annotated[
        bool, Query(description="Also list ineligible results (computed live).")
    ] = False,
) -> EligibilityList:
    """The enterprise's own results and its productions' (or one production's).

    Give ``enterprise_id`` or ``production_id``. A company key sees only its own
    enterprise's results (others: 404) and, giving neither, gets them; an operator key
    must give one (400).
    """
    if enterprise_id is None and production_id is None:
        # a company key is bound to one enterprise: "my results" is the only question
        enterprise_id = principal.enterprise_id
    if enterprise_id is None and production_id is None:
        raise ApiError(400, "give enterprise_id or production_id", field="enterprise_id")
    async with rules.uow() as work:
        if enterprise_id is None:
            enterprise_id = await work.projection.enterprise_of_production(production_id or "")
        if enterprise_id is None or not principal.can_see(enterprise_id):
            raise not_found("enterprise", enterprise_id or production_id or "")
        enterprise = await work.projection.enterprise(enterprise_id)
        productions = await work.projection.productions_of(enterprise_id, only=production_id)
        if enterprise is None and not productions:
            raise not_found("enterprise", enterprise_id)
        rows = await work.results.for_enterprise(enterprise_id, subject_id=production_id)
        await rules.book.refresh(work.conn)
    subjects = build_subjects(
        enterprise_id=enterprise_id, enterprise=enterprise, productions=productions,
        include_enterprise=production_id is None,
    )  # fmt: skip
    live = {
        (r.subject_id, r.policy_id): r
        for r in evaluate_subjects(subjects, rules.book.active(), today=rules.today())
    }
    items = []
    for row in rows:
        expl = row["explanation"]
        fresh = live.get((row["subject_id"], row["policy_id"]))
        if expl.get("mode") == "bulk" and fresh is not None:
            expl = _with_notes(fresh.explanation, expl)
        items.append(
            EligibilityItem(
                subject_type=row["subject_type"], subject_id=row["subject_id"],
                enterprise_id=row["enterprise_id"], policy_id=row["policy_id"],
                policy_version=row["current_version"] or row["policy_version"],
                status=row["status"], amount_cny=row["amount_cny"],
                missing_fields=list(row["missing_fields"]), explanation=expl,
            )
        )  # fmt: skip
    if include_ineligible:
        stored = {(i.subject_id, i.policy_id) for i in items}
        for key, r in sorted(live.items()):
            if key not in stored and r.status == "ineligible":
                items.append(
                    EligibilityItem(
                        subject_type=r.subject_type, subject_id=r.subject_id,
                        enterprise_id=enterprise_id, policy_id=r.policy_id,
                        policy_version=r.policy_version, status=r.status, amount_cny=None,
                        missing_fields=[], explanation=r.explanation,
                    )
                )  # fmt: skip
    return EligibilityList(items=items)


@router.get(
    "/eligibility/{subject_id}/{policy_id}/history",
    response_model=History,
    summary="How one result changed over time, and which event changed it",
    responses=problem_responses(404),
)
async def eligibility_history(
    subject_id: StoredText, policy_id: StoredText, rules: RulesDep, principal: CurrentPrincipal
) -> History:
    async with rules.uow() as work:
        rows = await work.results.history(subject_id, policy_id)
    if not rows or not principal.can_see(rows[-1]["enterprise_id"]):
        raise not_found("result", f"{subject_id}/{policy_id}")
    items = [
        HistoryEntry(
            changed_at=r["changed_at"], policy_version=r["policy_version"],
            previous_status=r["previous_status"], status=r["status"],
            previous_amount_cny=r["previous_amount_cny"], amount_cny=r["amount_cny"],
            cause=r["cause"], event_id=str(r["event_id"]),
        )
        for r in rows
    ]  # fmt: skip
    return History(subject_id=subject_id, policy_id=policy_id, items=items)


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
    async with rules.uow() as work:  # never committed: nothing is written or emitted
        await work.projection.lock_all()
        await rules.book.refresh(work.conn)
        active = [p for p in rules.book.active() if p.id != draft.id] + [draft]
        plan = await plan_bulk(
            work, cache=rules.cache, active=active, seeds=[draft.id], today=today
        )
    counts = plan.impact(draft.id)
    fund = plan.fund_of(draft.id)
    sample = (
        plan.changes.filter(pl.col("policy_id") == draft.id)
        .sort("subject_id")
        .head(rules.settings.simulate_sample_size)
        .select("subject_type", "subject_id", "enterprise_id", "previous_status", "status",
                "previous_amount_cny", "amount_cny")
        .to_dicts()
    )  # fmt: skip
    return {
        "policy_id": draft.id,
        "today": today.isoformat(),
        "impact": {
            **counts.__dict__,
            "changed": plan.changes.filter(pl.col("policy_id") == draft.id).height,
            "fund_budget_cny": None if fund is None else fund.budget_cny,
            "fund_committed_cny": None if fund is None else fund.committed_cny,
            "fund_exhausted": False if fund is None else fund.exhausted,
        },
        "sample": sample,
    }
