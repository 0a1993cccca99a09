"""``/v1/eligibility``: an enterprise's results, and how one result changed over time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from reelpolicy_common.http import ApiError, problem_example, problem_responses
from reelpolicy_common.http.authenticate import CurrentPrincipal, not_found
from reelpolicy_contracts.storable import StoredText
from reelpolicy_rules.entrypoints.http.deps import RulesDep
from reelpolicy_rules.handlers.subject_recalculation import build_subjects, evaluate_subjects

router = APIRouter(prefix="/v1", tags=["eligibility"])


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
        await rules.book.refresh(work.projection)
    subjects = build_subjects(
        enterprise_id=enterprise_id,
        enterprise=enterprise,
        productions=productions,
        include_enterprise=production_id is None,
    )
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
                subject_type=row["subject_type"],
                subject_id=row["subject_id"],
                enterprise_id=row["enterprise_id"],
                policy_id=row["policy_id"],
                policy_version=row["current_version"] or row["policy_version"],
                status=row["status"],
                amount_cny=row["amount_cny"],
                missing_fields=list(row["missing_fields"]),
                explanation=expl,
            )
        )
    if include_ineligible:
        stored = {(i.subject_id, i.policy_id) for i in items}
        for key, r in sorted(live.items()):
            if key not in stored and r.status == "ineligible":
                items.append(
                    EligibilityItem(
                        subject_type=r.subject_type,
                        subject_id=r.subject_id,
                        enterprise_id=enterprise_id,
                        policy_id=r.policy_id,
                        policy_version=r.policy_version,
                        status=r.status,
                        amount_cny=None,
                        missing_fields=[],
                        explanation=r.explanation,
                    )
                )
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
            changed_at=r["changed_at"],
            policy_version=r["policy_version"],
            previous_status=r["previous_status"],
            status=r["status"],
            previous_amount_cny=r["previous_amount_cny"],
            amount_cny=r["amount_cny"],
            cause=r["cause"],
            event_id=str(r["event_id"]),
        )
        for r in rows
    ]
    return History(subject_id=subject_id, policy_id=policy_id, items=items)
