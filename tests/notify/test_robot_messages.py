"""Group-robot requests and answers (pure): formats, what a result code means, and how
a refusal in a 2xx answer becomes the attempt's outcome."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from pydantic import ValidationError

from reelpolicy_notify.domain.alerts import Alert, digest_body
from reelpolicy_notify.domain.attempt_outcomes import decide_outcome
from reelpolicy_notify.domain.records import ClaimedDelivery, SendResult
from reelpolicy_notify.domain.rendering import render
from reelpolicy_notify.domain.robots import robot_refusal, robot_request
from reelpolicy_notify.entrypoints.http.schemas import SubscriptionCreate
from reelpolicy_notify.handlers.delivery_attempts import traced_url

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_the_dingtalk_signature_joins_the_robots_own_query() -> None:
    request = robot_request(
        "dingtalk",
        url="https://oapi.dingtalk.com/robot/send?access_token=T",
        title="t",
        markdown="### t\n\nm",
        secret="SECabc",
        now=NOW,
    )
    parts = urlsplit(request.url)
    query = parse_qs(parts.query)
    assert (parts.netloc, parts.path) == ("oapi.dingtalk.com", "/robot/send")
    assert query["access_token"] == ["T"]
    assert query["timestamp"] == [str(int(NOW.timestamp() * 1000))]
    assert query["sign"][0].endswith("=")  # base64 of 32 bytes, decoded back from %3D
    assert request.payload == {
        "msgtype": "markdown",
        "markdown": {"title": "t", "text": "### t\n\nm"},
    }


def test_unsigned_requests_leave_the_url_and_body_as_given() -> None:
    url = "https://open.feishu.cn/open-apis/bot/v2/hook/X"
    feishu = robot_request("feishu", url=url, title="t", markdown="m", secret=None, now=NOW)
    assert feishu.url == url
    assert "sign" not in feishu.payload
    assert feishu.payload["msg_type"] == "interactive"
    signed = robot_request("feishu", url=url, title="t", markdown="### t\n\nm", secret="s", now=NOW)
    assert signed.payload["timestamp"] == str(int(NOW.timestamp()))
    assert signed.payload["card"]["elements"] == [{"tag": "markdown", "content": "m"}]
    wecom = robot_request("wecom", url=url, title="t", markdown="### t\n\nm", secret=None, now=NOW)
    assert wecom.payload == {"msgtype": "markdown", "markdown": {"content": "### t\n\nm"}}


@pytest.mark.parametrize(
    ("channel", "answer", "verdict"),
    [
        ("wecom", {"errcode": 0, "errmsg": "ok"}, None),
        ("wecom", {"errcode": 45009, "errmsg": "api freq out of limit"}, "retry"),
        ("wecom", {"errcode": 93000, "errmsg": "invalid webhook url"}, "failed"),
        ("dingtalk", {"errcode": 0, "errmsg": "ok"}, None),
        ("dingtalk", {"errcode": 130101, "errmsg": "send too fast"}, "retry"),
        ("dingtalk", {"errcode": 410100, "errmsg": "rate limited"}, "retry"),
        ("dingtalk", {"errcode": -1, "errmsg": "system busy"}, "retry"),
        ("dingtalk", {"errcode": 310000, "errmsg": "sign not match"}, "failed"),
        ("feishu", {"code": 0, "msg": "success", "data": {}}, None),
        ("feishu", {"StatusCode": 0, "StatusMessage": "success"}, None),
        ("feishu", {"code": 11232, "msg": "frequency limited"}, "retry"),
        ("feishu", {"code": 19021, "msg": "sign match fail"}, "failed"),
        ("feishu", {"errcode": 0}, "failed"),  # not Feishu's answer: no code of its own
        ("dingtalk", {"errcode": "0"}, "failed"),
        ("dingtalk", {"errcode": True}, "failed"),
    ],
)
def test_what_a_robots_answer_means(
    channel: str, answer: dict[str, object], verdict: str | None
) -> None:
    refusal = robot_refusal(channel, json.dumps(answer))  # type: ignore[arg-type]
    assert (refusal.verdict if refusal else None) == verdict


@pytest.mark.parametrize("answer", [None, "", "ok", "[0]", '{"errcode": 0'])
def test_an_answer_without_a_result_code_is_a_failure(answer: str | None) -> None:
    refusal = robot_refusal("wecom", answer)
    assert refusal is not None
    assert refusal.verdict == "failed"


def claimed(attempt_count: int) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=uuid.uuid4(),
        subscription_id=uuid.uuid4(),
        enterprise_id="e1",
        event_type="eligibility.changed",
        body={},
        attempt_count=attempt_count,
        total_attempts=attempt_count,
        traceparent=None,
        channel="dingtalk",
        url="http://x",
        email=None,
        enabled=True,
        secrets=("SEC",),
        digest_window_seconds=None,
        failing_since=None,
    )


def test_a_refused_2xx_is_retried_or_failed_by_its_verdict() -> None:
    def decide(rejected: str | None, attempts: int = 1) -> tuple[str, float | None, bool]:
        result = SendResult(200, 3, error="refused", rejected=rejected)  # type: ignore[arg-type]
        outcome = decide_outcome(
            claimed=claimed(attempts),
            result=result,
            schedule=(0.0, 5.0),
            jitter=0.0,
            now=NOW,
            disable_after_seconds=86400,
        )
        return outcome.status, outcome.retry_in_seconds, outcome.endpoint_ok

    assert decide(None) == ("succeeded", None, True)
    assert decide("retry") == ("pending", 5.0, False)
    assert decide("retry", attempts=2) == ("failed", None, False)  # schedule exhausted
    assert decide("failed") == ("failed", None, False)


def test_robot_text_comes_from_the_stored_alert_in_the_subscriptions_locale() -> None:
    alert = Alert(
        alert_key="k",
        type="eligibility.changed",
        occurred_at=NOW,
        data={
            "subject_type": "enterprise",
            "subject_id": "ent-1",
            "enterprise_id": "ent-1",
            "policy_id": "p",
            "status": "eligible",
            "previous_status": "ineligible",
            "amount_cny": 3_000_000,
            "summary": "ent-1 is now eligible for p",
        },
        policy_id="p",
        amount_cny=3_000_000,
    )
    again = Alert.from_body(alert.body(), alert_key="k")
    assert again == alert
    chinese = render(again, locale="zh-CN", fmt="markdown")
    english = render(again, locale="en", fmt="markdown")
    assert "3,000,000" in chinese.body
    assert "3,000,000" in english.body
    assert chinese.title != english.title
    digest = digest_body(items=[alert.body(), alert.body()], window_seconds=60, now=NOW)
    digested = render(Alert.from_body(digest), locale="en", fmt="markdown").body
    assert digested.count("Enterprise ent-1 is now eligible for p") == 2


def test_a_robots_token_stays_out_of_traces() -> None:
    feishu = "https://open.feishu.cn/open-apis/bot/v2/hook/secret-token"
    assert traced_url(feishu, keep_path=False) == "https://open.feishu.cn"
    assert traced_url(
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K", keep_path=False
    ) == ("https://qyapi.weixin.qq.com")


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"channel": "dingtalk", "url": "https://r", "secret": "s"}, True),
        ({"channel": "dingtalk", "url": "https://r"}, False),
        ({"channel": "dingtalk", "url": "https://r", "secret": None}, False),
        ({"channel": "feishu", "secret": "s"}, False),
        ({"channel": "wecom", "url": "https://r"}, True),
        ({"channel": "wecom", "url": "https://r", "secret": "s"}, False),
        ({"channel": "webhook", "url": "https://r", "secret": "s"}, False),
    ],
)
def test_the_published_schema_states_the_robot_rules(body: dict[str, Any], valid: bool) -> None:
    """What the published schema accepts, the API accepts (the fuzz suite's premise)."""
    document = {**body, "events": ["eligibility.changed"]}
    schema = SubscriptionCreate.model_json_schema()
    published = not list(jsonschema.Draft202012Validator(schema).iter_errors(document))
    try:
        SubscriptionCreate.model_validate(document)
        accepted = True
    except ValidationError:
        accepted = False
    assert (published, accepted) == (valid, valid)
