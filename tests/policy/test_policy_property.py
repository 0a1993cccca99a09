"""Property: the per-subject evaluator, the bulk evaluator and the CEL translation agree."""

from __future__ import annotations

from typing import Any

import cel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_strategies import TODAY, policy_documents, production_subjects

from reelpolicy_policy import (
    STATUS_NAMES,
    Subject,
    cel_context,
    evaluate,
    evaluate_columnar,
    flatten_subject,
    may_apply,
    parse_policy,
    subject_values,
    subjects_to_frame,
    to_cel,
)

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Subject]]:
    docs = [draw(policy_documents(i)) for i in range(draw(st.integers(1, 3)))]
    subjects = [draw(production_subjects(i)) for i in range(draw(st.integers(1, 6)))]
    return docs, subjects


@SETTINGS
@given(cases())
def test_scalar_and_bulk_agree(case: tuple[list[dict[str, Any]], list[Subject]]) -> None:
    docs, subjects = case
    policies = [parse_policy(d) for d in docs]
    bulk = evaluate_columnar(policies, subjects_to_frame(subjects), today=TODAY).long()
    rows = {(r["subject_id"], r["policy_id"]): r for r in bulk.iter_rows(named=True)}
    assert len(rows) == len(subjects) * len(policies)
    for p in policies:
        for s in subjects:
            one = evaluate(p, s, today=TODAY)
            row = rows[(s.subject_id, p.id)]
            assert (row["status"], row["amount_cny"], row["missing_fields"]) == (
                one.status,
                one.amount_cny,
                one.missing_fields,
            ), one.explanation
            # the trace-free pre-check the per-subject path skips pairs with
            values = subject_values(s, TODAY)
            assert may_apply(p, values, today=TODAY) == (one.status != "ineligible")


def _sum(xs: list[int]) -> int:
    return sum(xs)


@settings(SETTINGS, max_examples=60)
@given(cases())
def test_scalar_and_cel_agree(case: tuple[list[dict[str, Any]], list[Subject]]) -> None:
    docs, subjects = case
    for d in docs:
        p = parse_policy(d)
        program = cel.compile(to_cel(p))
        for s in subjects:
            one = evaluate(p, s, today=TODAY)
            ctx = cel.Context(
                variables=cel_context(flatten_subject(s), TODAY), functions={"sum_ints": _sum}
            )
            status, amount = program.execute(ctx)
            assert (STATUS_NAMES[status], amount) == (one.status, one.amount_cny), to_cel(p)
