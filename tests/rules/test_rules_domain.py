"""Pure rules logic: diffs, constraints, the calendar, snapshot versions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
from rules_helpers import enterprise_policy

from reelpolicy_policy import Result, parse_policy
from reelpolicy_rules.domain.calendar import local_day, next_day_start, policies_for_new_day
from reelpolicy_rules.domain.constraints import (
    FundLedger,
    apply_subject_constraints,
    fund_holdings,
    related_policies,
)
from reelpolicy_rules.domain.event_order import is_newer, policy_applies, rounds
from reelpolicy_rules.domain.outcome_frames import (
    apply_frame_constraints,
    diff_frames,
    impact_counts,
)
from reelpolicy_rules.domain.outcomes import Outcome, diff_outcomes


def outcome(sid: str, status: str, amount: int | None) -> Outcome:
    return Outcome("enterprise", sid, sid, "p", 1, status, amount)


def test_diff_outcomes_only_real_changes() -> None:
    prev = {("a", "p"): outcome("a", "eligible", 10), ("b", "p"): outcome("b", "eligible", 10)}
    now = [outcome("a", "eligible", 10), outcome("c", "unknown", 5)]
    changes = {c.after.subject_id: c for c in diff_outcomes(previous=prev, current=now)}
    assert set(changes) == {"b", "c"}
    assert changes["b"].after.status == "ineligible"
    assert changes["b"].lost_eligibility
    assert changes["c"].previous_status == "ineligible"


def frame(rows: list[tuple[str, str, int | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "subject_type": ["production"] * len(rows),
            "subject_id": [r[0] for r in rows],
            "enterprise_id": ["e"] * len(rows),
            "policy_id": ["p"] * len(rows),
            "status": [r[1] for r in rows],
            "amount_cny": [r[2] for r in rows],
            "missing_fields": [[] for _ in rows],
        },
        schema_overrides={"amount_cny": pl.Int64, "missing_fields": pl.List(pl.String)},
    )


def test_diff_frames_and_impact() -> None:
    before = frame([("a", "eligible", 10), ("b", "eligible", 10), ("c", "eligible", 10)])
    after = frame([("a", "eligible", 10), ("b", "eligible", 20), ("d", "eligible", 5)])
    changes = diff_frames(before, after)
    assert sorted(changes["subject_id"].to_list()) == ["b", "c", "d"]
    counts = impact_counts(changes=changes, current=after, policy_id="p")
    assert (counts.newly_eligible, counts.no_longer_eligible, counts.amount_changed) == (1, 1, 1)
    assert counts.eligible_total == 3


def funded(budget: int) -> dict[str, object]:
    doc = enterprise_policy("t-fund")
    doc["constraints"] = {"fund": {"id": "ff", "budget_cny": budget}}
    return doc


def test_fund_exhaustion_is_reported_not_dropped() -> None:
    policy = parse_policy(funded(150000))
    current = frame([("a", "eligible", 100000), ("b", "eligible", 100000)]).with_columns(
        pl.lit("t-fund").alias("policy_id")
    )
    out, funds = apply_frame_constraints(current, policies=[policy])
    assert out.sort("subject_id")["amount_cny"].to_list() == [100000, 50000]
    assert funds["ff"].exhausted
    assert funds["ff"].unfunded == 1
    r = Result(
        policy_id="t-fund",
        policy_version=1,
        subject_id="c",
        subject_type="enterprise",
        status="eligible",
        amount_cny=100000,
    )
    remaining = {"ff": 0}
    [got] = apply_subject_constraints([r], policies=[policy], fund_remaining=remaining)
    assert got.status == "eligible"
    assert got.amount_cny == 0
    assert got.explanation["fund"]["exhausted"]
    assert related_policies(["t-fund"], [policy]) == {"t-fund"}


def test_calendar() -> None:
    late = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # already 2 March in Shanghai
    assert local_day(late, "Asia/Shanghai") == date(2026, 3, 2)
    assert next_day_start(late, "Asia/Shanghai").isoformat() == "2026-03-03T00:00:00+08:00"
    ending = parse_policy(enterprise_policy("t-end", to="2026-03-02"))
    steady = parse_policy(enterprise_policy("t-steady"))
    due = policies_for_new_day([ending, steady], before=date(2026, 3, 2), today=date(2026, 3, 3))
    assert due == [ending]
    assert policies_for_new_day([ending], before=None, today=date(2026, 3, 3)) == []


def test_snapshot_versions() -> None:
    assert is_newer(incoming=2, stored=1)
    assert not is_newer(incoming=1, stored=1)
    assert policy_applies(incoming=1, stored=1, revoke=True)
    assert not policy_applies(incoming=1, stored=1, revoke=False)


def test_rounds_keep_each_keys_order_and_never_hold_a_key_twice() -> None:
    items = ["a1", "b1", "a2", "c1", "a3", "b2"]
    assert rounds(items, key=lambda s: s[0]) == [["a1", "b1", "c1"], ["a2", "b2"], ["a3"]]
    assert rounds([], key=lambda s: s) == []


def test_fund_ledger_follows_draws_made_one_after_the_other() -> None:
    # a 250k fund of which others hold 100k and subject x held 50k
    ledger = FundLedger(budgets={"f": 250_000}, held={"f": 150_000})
    assert ledger.remaining_for({"f": 50_000}) == {"f": 150_000}  # x's own 50k is not "others"
    ledger.replace(before={"f": 50_000}, after={"f": 120_000})  # x now holds 120k
    assert ledger.remaining_for({}) == {"f": 30_000}
    ledger.replace(before={"f": 0}, after={"f": 30_000})
    assert ledger.remaining_for({}) == {"f": 0}  # spent: never negative
    assert fund_holdings(
        [("p", "eligible", 10), ("p", "unknown", 5), ("q", "eligible", 7), ("p", "eligible", None)],
        fund_by_policy={"p": "f"},
    ) == {"f": 10}
