"""Explanations of bulk changes.

Up to ``limit`` changes carry the full per-subject trace (the per-subject evaluator is
run for the changed subjects only); beyond that a compact explanation keeps a policy
change over 100,000 subjects fast. ``GET /v1/eligibility`` always shows the full
trace (computed from the projection when the stored one is compact).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import polars as pl

from reelpolicy_policy import Policy, evaluate_values
from reelpolicy_policy.evaluate import in_force
from reelpolicy_policy.fields import age_days
from reelpolicy_policy.frame import frame_to_values
from reelpolicy_rules.domain.constraints import fund_note
from reelpolicy_rules.domain.outcome_frames import FundState
from reelpolicy_rules.ports import SubjectCache


def _values(cache: SubjectCache, ids: set[str], today: date) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    wanted = pl.Series(sorted(ids), dtype=pl.String).implode()
    for kind in ("enterprise", "production"):
        frame = cache.frame(kind).filter(pl.col("subject_id").is_in(wanted))
        for sid, values in zip(frame["subject_id"], frame_to_values(frame), strict=True):
            values["enterprise.age_days"] = age_days(values.get("enterprise.established_on"), today)
            out[sid] = values
    return out


def compact(
    row: Mapping[str, Any], policy: Policy | None, version: int, today: date
) -> dict[str, Any]:
    expl: dict[str, Any] = {
        "mode": "bulk",
        "policy": row["policy_id"],
        "policy_version": version,
        "today": today.isoformat(),
    }
    if policy is None:
        expl["revoked"] = True
    else:
        expl["in_force"] = in_force(policy, today)
    if row["status"] == "unknown" and row.get("missing_fields"):
        expl["hint"] = "Provide " + ", ".join(row["missing_fields"]) + " to decide this policy."
    return expl


def explain_rows(
    rows: Sequence[dict[str, Any]],
    *,
    cache: SubjectCache,
    policies: Mapping[str, Policy],
    versions: Mapping[str, int],
    funds: Mapping[str, FundState],
    today: date,
    full_traces: bool,
) -> list[dict[str, Any]]:
    """One explanation per change row (same order): the evaluation's full trace, or,
    without ``full_traces``, the compact form (no subject is evaluated again)."""
    values = _values(cache, {r["subject_id"] for r in rows}, today) if full_traces else {}
    out = []
    for row in rows:
        pid, sid = row["policy_id"], row["subject_id"]
        policy = policies.get(pid)
        if policy is not None and sid in values:
            expl = evaluate_values(policy, values[sid], subject_id=sid, today=today).explanation
        else:
            expl = compact(row, policy, versions.get(pid, 0), today)
        fid = row.get("fund_id")
        if fid and row["status"] == "eligible" and fid in funds:
            state = funds[fid]
            expl["fund"] = fund_note(
                fund_id=fid,
                budget=state.budget_cny,
                requested=row.get("requested_cny") or 0,
                granted=row["amount_cny"] or 0,
                remaining=state.budget_cny - state.committed_cny,
            )
        group = policy.constraints.stacking_group if policy else None
        if group is not None and row["status"] != "ineligible":
            expl["stacking_group"] = {"group": group.id, "cap_cny": group.cap_cny}
        out.append(expl)
    return out
