"""The pure parts of the Alerts and simulation pages: the create form's body for notify,
the safe reading of a draft YAML, and the bars of the chart."""

from __future__ import annotations

import json

import pytest

from reelpolicy_portal.domain.alerts import (
    CHANNELS,
    SubscriptionFormError,
    excerpt,
    last_attempt,
    subscription_body,
)
from reelpolicy_portal.domain.simulation import DraftRejectedError, bars, draft_json

FORM = {
    "channel": "webhook",
    "url": " https://hooks.example.com/x ",
    "email": "",
    "secret": "",
    "events": ["eligibility.changed", "no.such.type"],
    "deadline_days": "",
}


def test_a_webhook_form_becomes_notifys_body() -> None:
    assert subscription_body(enterprise_id="e1", **FORM) == {
        "enterprise_id": "e1",
        "channel": "webhook",
        "url": "https://hooks.example.com/x",
        "events": ["eligibility.changed"],
    }


def test_a_signed_robot_needs_its_secret_and_sends_it() -> None:
    form = {**FORM, "channel": "dingtalk"}
    with pytest.raises(SubscriptionFormError) as refused:
        subscription_body(enterprise_id="e1", **form)
    assert refused.value.field == "secret"
    body = subscription_body(enterprise_id="e1", **{**form, "secret": " SECabc "})
    assert body["secret"] == "SECabc"
    wecom = subscription_body(enterprise_id="e1", **{**FORM, "channel": "wecom", "secret": "x"})
    assert "secret" not in wecom  # WeCom robots do not sign


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel": "sms"}, "channel"),
        ({"events": []}, "events"),
        ({"url": "  "}, "url"),
        ({"channel": "email"}, "email"),
        ({"deadline_days": "soon"}, "deadline_days"),
    ],
)
def test_an_incomplete_form_names_its_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(SubscriptionFormError) as refused:
        subscription_body(enterprise_id="e1", **{**FORM, **changes})  # type: ignore[arg-type]
    assert refused.value.field == field


def test_every_channel_names_a_form_field() -> None:
    assert {c.target for c in CHANNELS} <= {"url", "email"}
    assert len({c.name for c in CHANNELS}) == len(CHANNELS)


def test_the_log_shows_the_last_attempt_and_an_excerpt() -> None:
    delivery = {"attempts": [{"attempt": 2, "latency_ms": 5}, {"attempt": 1, "latency_ms": 9}]}
    assert last_attempt(delivery) == {"attempt": 2, "latency_ms": 5}
    assert last_attempt({"attempts": []}) is None
    assert excerpt("x" * 1000).endswith("…")
    assert len(excerpt("x" * 1000)) == 301
    assert excerpt(None) == ""


def test_a_draft_yaml_becomes_json_with_dates_as_text() -> None:
    document = json.loads(draft_json(b"id: p\neffective: {from: 2024-06-25}\n"))
    assert document == {"id": "p", "effective": {"from": "2024-06-25"}}


@pytest.mark.parametrize(
    ("upload", "said"),
    [
        (b"", "empty"),
        (b"- a\n- b\n", "mapping"),
        (b"id: [unclosed\n", "line 2"),
        (b"id: !!python/object/apply:os.system ['true']\n", "python/object"),
        (b"x" * (512 * 1024 + 1), "larger"),
    ],
)
def test_a_draft_that_is_not_a_mapping_is_refused(upload: bytes, said: str) -> None:
    with pytest.raises(DraftRejectedError) as refused:
        draft_json(upload)
    assert said in str(refused.value)


def test_the_largest_bar_fills_the_chart() -> None:
    drawn = bars([("a", 2, "2"), ("b", 1, "1"), ("c", 0, "0")])
    assert [b.length for b in drawn] == [100.0, 50.0, 0.0]
    assert [b.length for b in bars([("a", 0, "0")])] == [0.0]
