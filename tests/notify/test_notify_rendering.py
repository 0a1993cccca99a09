"""Alerts for people: every alert type in zh-CN and en, as text, HTML and markdown."""

from __future__ import annotations

import re
import string
import tomllib
import uuid
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from importlib.resources import files
from typing import Any

import pytest

from reelpolicy_notify.domain.alerts import (
    Alert,
    deadline_alert,
    digest_body,
    eligibility_alert,
    policy_changed_alert,
)
from reelpolicy_notify.domain.policies import policy_facts
from reelpolicy_notify.domain.rendering import (
    LOCALES,
    Format,
    Locale,
    markdown_text,
    render,
)
from reelpolicy_notify.domain.summaries import change_items, english_sentence

NOW = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
FORMATS: tuple[Format, ...] = ("text", "html", "markdown")

YANGPU = {
    "id": "yangpu-office",
    "title": {"zh": "杨浦区办公用房支持", "en": "Yangpu office support"},
    "issuer": {"name": "Yangpu", "level": "district", "region_code": "310110"},
    "effective": {"from": "2025-01-01", "to": "2026-12-31"},
    "subject": "enterprise",
    "criteria": {"all": []},
    "benefits": [
        {"id": "purchase", "kind": "office_purchase", "max_amount_cny": 3_000_000},
        {"id": "rent", "kind": "rent_subsidy", "max_amount_cny": 1_200_000},
    ],
}
POLICY = policy_facts(YANGPU, version=2)


def change(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "subject_type": "enterprise",
        "subject_id": "ent-1",
        "enterprise_id": "ent-1",
        "policy_id": "yangpu-office",
        "policy_version": 2,
        "previous_status": "unknown",
        "status": "eligible",
        "previous_amount_cny": None,
        "amount_cny": 3_000_000,
        "missing_fields": [],
        "explanation": {
            "in_force": True,
            "today": "2026-12-07",
            "amount": {
                "benefits": [
                    {"id": "purchase", "kind": "office_purchase", "amount": 3_000_000},
                    {"id": "rent", "kind": "rent_subsidy", "amount": 1_200_000},
                ],
                "exclusive": [{"group": ["purchase", "rent"], "chosen": "purchase"}],
                "sum": 3_000_000,
                "amount_cny": 3_000_000,
            },
        },
        "cause": "ev",
    }
    return {**base, **overrides}


def eligibility(**overrides: Any) -> Alert:
    return eligibility_alert(
        event_id=uuid.uuid4(), occurred_at=NOW, change=change(**overrides), policy=POLICY
    )


def policy_changed() -> Alert:
    v3 = {
        **YANGPU,
        "effective": {"from": "2025-01-01", "to": "2027-06-30"},
        "benefits": [
            {"id": "purchase", "kind": "office_purchase", "max_amount_cny": 3_500_000},
            {"id": "rent", "kind": "rent_subsidy", "max_amount_cny": 1_200_000},
        ],
    }
    items = change_items(YANGPU, v3)
    return policy_changed_alert(
        event_id=uuid.uuid4(),
        occurred_at=NOW,
        policy=policy_facts(v3, version=3),
        change="published",
        previous_version=2,
        summary=[english_sentence(k, p) for k, p in items],
        changes=items,
    )


def deadline() -> Alert:
    return deadline_alert(
        policy=POLICY,
        expires_on=date(2026, 12, 31),
        today=date(2026, 12, 7),
        now=NOW,
        enterprise_id="ent-1",
        subjects=["enterprise:ent-1"],
    )


def sample_test_alert() -> Alert:
    data = {"subscription_id": "s", "summary": "test message from reelpolicy"}
    return Alert.from_body({"type": "test", "timestamp": NOW.isoformat(), "data": data})


def digest() -> Alert:
    items = [eligibility().body(), policy_changed().body()]
    return Alert.from_body(digest_body(items=items, window_seconds=3600, now=NOW))


def disabled() -> Alert:
    data = {"url": "https://hooks.example.com/x", "reason": "410 Gone", "summary": "s"}
    return Alert.from_body(
        {"type": "endpoint.disabled", "timestamp": NOW.isoformat(), "data": data}
    )


EVERY_TYPE = {
    "eligibility.changed": eligibility,
    "policy.changed": policy_changed,
    "policy.deadline": deadline,
    "digest": digest,
    "test": sample_test_alert,
    "endpoint.disabled": disabled,
}

# What each alert must say, per locale: the policy in the locale's words, the amount with
# thousands separators, the date as the locale writes it.
EXPECTED: dict[str, dict[Locale, list[str]]] = {
    "eligibility.changed": {
        "zh-CN": ["资格变化：杨浦区办公用房支持", "企业 ent-1", "¥3,000,000", "已选 purchase"],
        "en": ["Eligibility changed: Yangpu office support", "CN¥3,000,000", "purchase was chosen"],
    },
    "policy.changed": {
        "zh-CN": ["政策更新", "由 ¥3,000,000 提高到 ¥3,500,000", "2026年12月31日", "2027年6月30日"],
        "en": [
            "Policy updated",
            "from CN¥3,000,000 to CN¥3,500,000",
            "Dec 31, 2026",
            "Jun 30, 2027",
        ],
    },
    "policy.deadline": {
        "zh-CN": ["申报截止提醒", "2026年12月31日", "还剩 24 天", "enterprise:ent-1"],
        "en": ["Deadline approaching", "Dec 31, 2026", "24 days from now", "enterprise:ent-1"],
    },
    "digest": {
        "zh-CN": ["2 条更新", "资格变化：杨浦区办公用房支持", "政策更新"],
        "en": ["2 updates", "Eligibility changed: Yangpu office support", "Policy updated"],
    },
    "test": {"zh-CN": ["测试消息"], "en": ["Test message"]},
    "endpoint.disabled": {
        "zh-CN": ["接收端已停用", "https://hooks.example.com/x", "410 Gone"],
        "en": ["Endpoint disabled", "https://hooks.example.com/x", "410 Gone"],
    },
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", sorted(EVERY_TYPE))
def test_every_alert_type_reads_in_each_locale_and_format(
    kind: str, locale: Locale, fmt: Format
) -> None:
    message = render(EVERY_TYPE[kind](), locale=locale, fmt=fmt)
    assert "\n" not in message.title
    plain = message.body.replace("\\", "")  # markdown escapes
    for expected in EXPECTED[kind][locale]:
        assert expected.replace("\\", "") in plain, (kind, locale, fmt, expected, plain)
    assert message.title.split("：")[0].split(":")[0] in plain  # the body starts complete
    if locale == "en":
        assert not re.search(r"[\u4e00-\u9fff]", message.title), message.title
    else:
        assert re.search(r"[\u4e00-\u9fff]", message.title), message.title
    # Shanghai time, as each locale writes it
    assert ("2026年12月7日 09:30:00" if locale == "zh-CN" else "Dec 7, 2026, 9:30:00") in plain


@pytest.mark.parametrize(
    ("overrides", "zh", "en"),
    [
        (
            {"previous_status": "eligible", "previous_amount_cny": 1_200_000},
            ["由 ¥1,200,000 变为 ¥3,000,000（+¥1,800,000）"],
            ["from CN¥1,200,000 to CN¥3,000,000 (+CN¥1,800,000)"],
        ),
        (
            {
                "status": "unknown",
                "amount_cny": None,
                "missing_fields": ["enterprise.established_on", "enterprise.office.area_m2"],
            },
            ["缺少 enterprise.established_on、enterprise.office.area_m2"],
            ["missing enterprise.established_on, enterprise.office.area_m2"],
        ),
        (
            {
                "status": "ineligible",
                "previous_status": "eligible",
                "amount_cny": None,
                "explanation": {
                    "in_force": True,
                    "criteria": {
                        "all": [
                            {
                                "field": "enterprise.region_code",
                                "op": "prefix",
                                "expected": "310110",
                                "actual": "310117",
                                "result": "fail",
                            }
                        ],
                        "result": "fail",
                    },
                },
            },
            [
                "不再符合「杨浦区办公用房支持」",
                "enterprise.region_code prefix 310110（实际：310117）",
            ],
            ["no longer eligible for Yangpu office support", "(actual: 310117)"],
        ),
    ],
)
def test_eligibility_says_by_how_much_and_why(
    overrides: dict[str, Any], zh: list[str], en: list[str]
) -> None:
    alert = eligibility(**overrides)
    for locale, expected in (("zh-CN", zh), ("en", en)):
        body = render(alert, locale=locale, fmt="text").body  # type: ignore[arg-type]
        for text in expected:
            assert text in body, (locale, text, body)


HOSTILE = '<script>alert("x")</script> & [link](https://evil.example) **bold** `code`'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_html_escapes_what_alerts_carry() -> None:
    alert = eligibility(subject_id=HOSTILE, missing_fields=[])
    for locale in LOCALES:
        body = render(alert, locale=locale, fmt="html", unsubscribe_url="https://n/u?a=1&b=2").body
        parser = _Tags()
        parser.feed(body)
        assert "script" not in parser.tags
        assert "&lt;script&gt;" in body
        assert 'href="https://n/u?a=1&amp;b=2"' in body


def test_markdown_carries_no_html_and_no_syntax_from_values() -> None:
    alert = eligibility(subject_id=HOSTILE)
    for locale in LOCALES:
        body = render(alert, locale=locale, fmt="markdown").body
        assert "<" not in body
        assert ">" not in body.replace("→", "")
        for syntax in ("[link]", "**bold**", "`code`"):
            assert syntax not in body
        assert "\\[link\\]" in body
    assert markdown_text("a_b\nc") == "a\\_b c"


def test_text_is_not_html_escaped() -> None:
    body = render(eligibility(subject_id="A&B <Ltd>"), locale="en", fmt="text").body
    assert "Enterprise A&B <Ltd>" in body


def test_email_parts_carry_the_unsubscribe_link_markdown_does_not() -> None:
    url = "https://notify.example/unsubscribe/token"
    for locale in LOCALES:
        for fmt in ("text", "html"):
            assert url in render(deadline(), locale=locale, fmt=fmt, unsubscribe_url=url).body
        assert url not in render(deadline(), locale=locale, fmt="markdown").body


def _catalog(locale: str) -> dict[str, dict[str, str]]:
    raw = files("reelpolicy_notify").joinpath("templates", "messages", f"{locale}.toml")
    return tomllib.loads(raw.read_text(encoding="utf-8"))


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    zh, en = _catalog("zh-CN"), _catalog("en")
    assert zh.keys() == en.keys()
    for section in zh:
        assert zh[section].keys() == en[section].keys(), section
        for key in zh[section]:
            assert _placeholders(zh[section][key]) == _placeholders(en[section][key]), key


def test_every_change_item_has_words_in_each_catalog() -> None:
    keys = {
        "new_policy", "revoked", "deadline_set", "deadline_removed", "deadline_moved",
        "start_set", "start_removed", "start_moved", "benefit_added", "benefit_added_cap",
        "benefit_removed", "cap_raised", "cap_lowered", "cap_changed", "rate_changed",
        "fund_changed", "total_cap_changed", "stacking_changed", "criteria_changed",
        "issuer_changed", "title_changed", "no_material_change", "revoke_reason",
    }  # fmt: skip
    for locale in LOCALES:
        assert set(_catalog(locale)["change"]) == keys


def test_a_policy_change_stored_before_the_catalogs_still_renders() -> None:
    body = policy_changed().body()
    del body["data"]["change_items"]
    text = render(Alert.from_body(body), locale="zh-CN", fmt="text").body
    assert "cap raised from 3,000,000 to 3,500,000 CNY for benefit purchase" in text


def test_a_disabled_robot_is_named_in_the_locale_by_its_platform_and_host() -> None:
    body = {
        "type": "endpoint.disabled",
        "timestamp": NOW.isoformat(),
        "data": {"channel": "dingtalk", "url": "https://oapi.dingtalk.com", "reason": "410"},
    }
    chinese = render(Alert.from_body(body), locale="zh-CN", fmt="text").body
    english = render(Alert.from_body(body), locale="en", fmt="text").body
    assert "接收端 钉钉机器人（https://oapi.dingtalk.com） 已停用：410" in chinese
    assert "the DingTalk robot at https://oapi.dingtalk.com was disabled" in english
    assert "robot at" not in chinese
