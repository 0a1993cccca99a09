"""Outcomes as frames, for recalculating policies (pure polars): outcomes, constraints,
diff, impact counts.

Frames of outcomes have the columns of :data:`OUTCOME_SCHEMA` and hold only stored
results (eligible / unknown); absent means ineligible, so diffs stay small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from reelpolicy_policy import ColumnarResult, Policy, apply_stacking_frame
from reelpolicy_rules.domain.constraints import fund_budgets, fund_of

OUTCOME_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "subject_type": pl.String,
    "subject_id": pl.String,
    "enterprise_id": pl.String,
    "policy_id": pl.String,
    "status": pl.String,
    "amount_cny": pl.Int64,
    "missing_fields": pl.List(pl.String),
}
KEYS = ["subject_id", "policy_id"]


def outcome_frame(
    result: ColumnarResult, *, subjects: pl.DataFrame, subject_type: str
) -> pl.DataFrame:
    """Stored-result rows (not ineligible) of a columnar run; ``subjects`` maps id ->
    enterprise."""
    statuses = [pl.col(f"{p.id}:status") != 0 for p in result.policies]
    if not statuses:
        return pl.DataFrame(schema=OUTCOME_SCHEMA)
    kept = result.frame.filter(pl.any_horizontal(statuses))
    long = ColumnarResult(frame=kept, policies=result.policies).long()
    long = long.filter(pl.col("status") != "ineligible")
    return long.join(subjects.select("subject_id", "enterprise_id"), on="subject_id").select(
        pl.lit(subject_type).alias("subject_type"),
        *[c for c in OUTCOME_SCHEMA if c != "subject_type"],
    )


@dataclass(frozen=True)
class FundState:
    fund_id: str
    budget_cny: int
    requested_cny: int
    committed_cny: int
    unfunded: int

    @property
    def exhausted(self) -> bool:
        return self.committed_cny >= self.budget_cny


def apply_frame_constraints(
    outcomes: pl.DataFrame, *, policies: Sequence[Policy]
) -> tuple[pl.DataFrame, dict[str, FundState]]:
    """Stacking caps, then fund budgets (eligible results by subject id, then policy id).

    Adds ``requested_cny`` (before the fund) and ``fund_id`` / ``fund_budget_cny``;
    ``amount_cny`` becomes the granted amount. A result the fund cannot cover stays
    eligible with what is left (possibly 0), reported, never silently dropped.
    """
    stacked = apply_stacking_frame(outcomes, policies=policies)
    funds = {p.id: f for p in policies if (f := fund_of(p)) is not None}
    budgets = fund_budgets(policies)
    table = pl.DataFrame(
        {
            "policy_id": list(funds),
            "fund_id": [f for f, _ in funds.values()],
            "fund_budget_cny": [budgets[f] for f, _ in funds.values()],
        },
        schema={"policy_id": pl.String, "fund_id": pl.String, "fund_budget_cny": pl.Int64},
    )
    df = stacked.join(table, on="policy_id", how="left").with_columns(
        pl.col("amount_cny").alias("requested_cny")
    )
    drawing = (
        pl.col("fund_id").is_not_null()
        & (pl.col("status") == "eligible")
        & (pl.col("amount_cny").fill_null(0) > 0)
    )
    granted = (
        df.filter(drawing)
        .sort(["fund_id", "subject_id", "policy_id"])
        .with_columns(
            (pl.col("amount_cny").cum_sum().over("fund_id") - pl.col("amount_cny")).alias("_before")
        )
        .select(
            *KEYS,
            pl.min_horizontal(
                "amount_cny", (pl.col("fund_budget_cny") - pl.col("_before")).clip(0)
            ).alias("_granted"),
        )
    )
    out = df.join(granted, on=KEYS, how="left").with_columns(
        pl.coalesce("_granted", "amount_cny").alias("amount_cny")
    )
    states: dict[str, FundState] = {}
    drawn = out.filter(drawing)
    for fid, budget in budgets.items():
        rows = drawn.filter(pl.col("fund_id") == fid)
        states[fid] = FundState(
            fund_id=fid,
            budget_cny=budget,
            requested_cny=int(rows["requested_cny"].sum() or 0),
            committed_cny=int(rows["_granted"].sum() or 0),
            unfunded=int((rows["_granted"] < rows["requested_cny"]).sum()),
        )
    return out.drop("_granted"), states


def diff_frames(previous: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """Rows whose status or amount changed, with ``previous_status`` / ``previous_amount_cny``.

    Both frames hold stored results only; a key missing on one side is ineligible there.
    """
    prev = previous.select(
        *KEYS,
        pl.col("subject_type").alias("_p_type"),
        pl.col("enterprise_id").alias("_p_enterprise"),
        pl.col("status").alias("previous_status"),
        pl.col("amount_cny").alias("previous_amount_cny"),
    )
    j = current.join(prev, on=KEYS, how="full", coalesce=True)
    j = j.with_columns(
        pl.coalesce("subject_type", "_p_type").alias("subject_type"),
        pl.coalesce("enterprise_id", "_p_enterprise").alias("enterprise_id"),
        pl.col("status").fill_null("ineligible"),
        pl.col("previous_status").fill_null("ineligible"),
        pl.col("missing_fields").fill_null(pl.lit([], pl.List(pl.String))),
    )
    changed = (pl.col("status") != pl.col("previous_status")) | pl.col("amount_cny").ne_missing(
        pl.col("previous_amount_cny")
    )
    return j.filter(changed).drop("_p_type", "_p_enterprise")


@dataclass(frozen=True)
class ImpactCounts:
    newly_eligible: int
    no_longer_eligible: int
    amount_changed: int
    eligible_total: int
    total_potential_cny: int


def impact_counts(*, changes: pl.DataFrame, current: pl.DataFrame, policy_id: str) -> ImpactCounts:
    """What one policy's run changed, and its eligible total (before fund limits)."""
    ch = changes.filter(pl.col("policy_id") == policy_id)
    now_e, was_e = pl.col("status") == "eligible", pl.col("previous_status") == "eligible"
    cur = current.filter((pl.col("policy_id") == policy_id) & (pl.col("status") == "eligible"))
    requested = "requested_cny" if "requested_cny" in cur.columns else "amount_cny"
    return ImpactCounts(
        newly_eligible=ch.filter(now_e & ~was_e).height,
        no_longer_eligible=ch.filter(~now_e & was_e).height,
        amount_changed=ch.filter(
            now_e & was_e & pl.col("amount_cny").ne_missing(pl.col("previous_amount_cny"))
        ).height,
        eligible_total=cur.height,
        total_potential_cny=int(cur[requested].sum() or 0),
    )


@dataclass(frozen=True)
class SimulationReport:
    """What a draft would change: counts, its fund, the first changed subjects by id."""

    counts: ImpactCounts
    changed: int
    fund: FundState | None
    sample: list[dict[str, Any]]
