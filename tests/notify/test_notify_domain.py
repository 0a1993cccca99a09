"""Pure notify rules: signing, retries, URL safety, summaries, digests, filters, outcomes."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from reelpolicy_notify.adapters.secret_box import (
    SecretBox,
    SecretBoxError,
    new_sealing_key,
    parse_key_ring,
)
from reelpolicy_notify.domain.alerts import digest_body, digest_key, eligibility_alert
from reelpolicy_notify.domain.attempt_outcomes import decide_outcome
from reelpolicy_notify.domain.filters import Filters, matches
from reelpolicy_notify.domain.policies import policy_facts, region_prefix
from reelpolicy_notify.domain.records import ClaimedDelivery, SendResult
from reelpolicy_notify.domain.retries import (
    classify,
    next_attempt,
    parse_retry_after,
    parse_schedule,
)
from reelpolicy_notify.domain.signing import new_secret, signature_headers
from reelpolicy_notify.domain.summaries import summarize_change, summarize_eligibility
from reelpolicy_notify.domain.targets import (
    UnsafeTargetError,
    check_addresses,
    is_public_address,
    parse_target,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def doc(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "sh-rent",
        "title": {"zh": "租金", "en": "Shanghai rent support"},
        "issuer": {"name": "x", "level": "municipal", "region_code": "310000"},
        "effective": {"from": "2025-01-01", "to": "2027-06-24"},
        "subject": "enterprise",
        "criteria": {"all": []},
        "benefits": [{"id": "rent", "kind": "rent_subsidy", "max_amount_cny": 1_500_000}],
    }
    return {**base, **overrides}


# --- signing ---------------------------------------------------------------------------


def test_signed_headers_verify_with_standardwebhooks() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    body = '{"type":"eligibility.changed","timestamp":"2026-01-01T00:00:00+00:00","data":{}}'
    headers = signature_headers(msg_id="d-1", body=body, secrets_=[secret])
    assert headers["webhook-id"] == "d-1"
    assert Webhook(secret).verify(body, headers)["type"] == "eligibility.changed"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("{}", '{"x":1}'), headers)


def test_during_rotation_both_secrets_sign() -> None:
    old, new = new_secret(), new_secret()
    body = '{"type":"test","timestamp":"t","data":{}}'
    headers = signature_headers(msg_id="d-2", body=body, secrets_=[new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(s.startswith("v1,") for s in headers["webhook-signature"].split(" "))
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_secrets_have_24_to_64_bytes() -> None:
    with pytest.raises(ValueError, match="24 to 64"):
        new_secret(16)
    assert len(new_secret(64)) > len(new_secret(24))


def test_secret_box_round_trips_and_detects_tampering() -> None:
    box = SecretBox(parse_key_ring(new_sealing_key("a")))
    sealed = box.seal("whsec_abc")
    assert "whsec" not in sealed
    assert box.open(sealed) == "whsec_abc"
    assert box.seal("whsec_abc") != sealed  # random nonce
    with pytest.raises(SecretBoxError):
        SecretBox(parse_key_ring(new_sealing_key("a"))).open(sealed)


# --- retries ---------------------------------------------------------------------------


def test_schedule_parsing_and_classification() -> None:
    assert parse_schedule("0,5,300") == (0.0, 5.0, 300.0)
    with pytest.raises(ValueError, match="schedule"):
        parse_schedule("")
    assert [classify(c) for c in (200, 204, 410, 429, 500, 503, None, 400, 404)] == [
        "succeeded",
        "succeeded",
        "gone",
        "retry",
        "retry",
        "retry",
        "retry",
        "failed",
        "failed",
    ]


def test_next_attempt_follows_the_schedule_with_bounded_jitter() -> None:
    schedule = parse_schedule("0,5,300,1800,7200,18000,36000,36000")
    rng = random.Random(7)
    for made in range(1, 8):
        delay = next_attempt(schedule=schedule, attempts_made=made, jitter=0.1, rng=rng)
        assert delay.delay_seconds is not None
        assert schedule[made] * 0.9 <= delay.delay_seconds <= schedule[made] * 1.1
    assert next_attempt(schedule=schedule, attempts_made=8).delay_seconds is None


def test_retry_after_is_honoured_when_longer() -> None:
    schedule = (0.0, 5.0, 300.0)
    assert parse_retry_after("120", now=NOW) == 120.0
    http_date = (NOW + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, now=NOW) == pytest.approx(90.0)
    assert parse_retry_after("soon", now=NOW) is None
    longer = next_attempt(schedule=schedule, attempts_made=1, retry_after=120.0, jitter=0)
    shorter = next_attempt(schedule=schedule, attempts_made=1, retry_after=1.0, jitter=0)
    assert (longer.delay_seconds, shorter.delay_seconds) == (120.0, 5.0)


def claimed(**overrides: Any) -> ClaimedDelivery:
    base: dict[str, Any] = {
        "id": uuid.uuid4(),
        "subscription_id": uuid.uuid4(),
        "enterprise_id": "e1",
        "event_type": "eligibility.changed",
        "body": {},
        "attempt_count": 1,
        "total_attempts": 1,
        "traceparent": None,
        "channel": "webhook",
        "url": "http://x",
        "email": None,
        "enabled": True,
        "secrets": ("whsec_x",),
        "digest_window_seconds": None,
        "failing_since": None,
    }
    return ClaimedDelivery(**{**base, **overrides})


def outcome(result: SendResult, **overrides: Any) -> Any:
    return decide_outcome(
        claimed=claimed(**overrides),
        result=result,
        schedule=(0.0, 5.0),
        jitter=0.0,
        now=NOW,
        disable_after_seconds=5 * 86400,
    )


def test_outcomes_of_an_attempt() -> None:
    ok = outcome(SendResult(200, 3))
    assert (ok.status, ok.endpoint_ok, ok.disable_reason) == ("succeeded", True, None)
    retry = outcome(SendResult(503, 3))
    assert (retry.status, retry.retry_in_seconds) == ("pending", 5.0)
    exhausted = outcome(SendResult(None, 3, error="timeout"), attempt_count=2)
    assert (exhausted.status, exhausted.error) == ("failed", "timeout")
    gone = outcome(SendResult(410, 3))
    assert gone.status == "failed"
    assert gone.disable_reason
    assert "410" in gone.disable_reason
    bad = outcome(SendResult(400, 3))
    assert (bad.status, bad.disable_reason) == ("failed", None)
    stale = outcome(SendResult(500, 3), failing_since=NOW - timedelta(days=6))
    assert stale.status == "failed"
    assert stale.disable_reason
    assert "days" in stale.disable_reason


# --- outbound safety -------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "fc00::1",
    ],
)
def test_private_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)
    with pytest.raises(UnsafeTargetError):
        check_addresses("h", [address], allow_private=False, allowed_hosts=frozenset())


def test_public_addresses_and_allowances() -> None:
    assert is_public_address("8.8.8.8")
    assert is_public_address("2606:4700::1111")
    check_addresses("h", ["8.8.8.8"], allow_private=False, allowed_hosts=frozenset())
    check_addresses("h", ["127.0.0.1"], allow_private=True, allowed_hosts=frozenset())
    check_addresses(
        "dev.local", ["10.0.0.1"], allow_private=False, allowed_hosts=frozenset({"dev.local"})
    )
    with pytest.raises(UnsafeTargetError):  # one bad answer is enough
        check_addresses(
            "h", ["8.8.8.8", "10.0.0.1"], allow_private=False, allowed_hosts=frozenset()
        )


def test_url_shapes() -> None:
    assert parse_target("https://Example.com/hook") == ("example.com", 443)
    assert parse_target("http://127.0.0.1:8080/x") == ("127.0.0.1", 8080)
    for bad in ("ftp://example.com/", "https://user:pw@example.com/", "not a url"):
        with pytest.raises(UnsafeTargetError):
            parse_target(bad)


# --- summaries -------------------------------------------------------------------------


def test_summaries_between_policy_versions() -> None:
    v1 = doc()
    v2 = doc(
        effective={"from": "2025-01-01", "to": "2027-12-31"},
        benefits=[
            {"id": "rent", "kind": "rent_subsidy", "max_amount_cny": 2_000_000},
            {"id": "talent", "kind": "talent", "max_amount_cny": 50_000},
        ],
    )
    lines = summarize_change(v1, v2)
    assert "cap raised from 1,500,000 to 2,000,000 CNY for benefit rent" in lines
    assert "deadline moved from 2027-06-24 to 2027-12-31" in lines
    assert "new benefit talent (talent, up to 50,000 CNY)" in lines
    assert summarize_change(None, v1) == ["new policy: Shanghai rent support"]
    assert summarize_change(v1, v1, revoked=True) == ["revoked: Shanghai rent support"]
    assert summarize_change(v1, doc(benefits=[])) == ["benefit rent removed"]
    assert summarize_change(v1, dict(v1)) == ["document updated (no material change)"]


def test_eligibility_sentences() -> None:
    change = {
        "policy_id": "p",
        "status": "eligible",
        "previous_status": "ineligible",
        "amount_cny": 100_000,
        "previous_amount_cny": None,
    }
    assert (
        summarize_eligibility(change, policy_title="Rent")
        == "now eligible for Rent (up to 100,000 CNY)"
    )
    gone = {**change, "status": "ineligible", "previous_status": "eligible", "amount_cny": None}
    assert summarize_eligibility(gone, policy_title=None) == "no longer eligible for p"


# --- policies, filters, alerts, digests ------------------------------------------------


def test_region_prefixes_and_policy_facts() -> None:
    assert [region_prefix(c) for c in ("310000", "410100", "310110", None)] == [
        "31",
        "4101",
        "310110",
        None,
    ]
    facts = policy_facts(doc(), version=2)
    assert (facts.region_prefix, facts.max_amount_cny, facts.expires_on) == (
        "31",
        1_500_000,
        date(2027, 6, 24),
    )
    national = policy_facts(doc(issuer={"name": "n", "level": "national"}), version=1)
    assert national.region_prefix is None


def test_filter_matching() -> None:
    facts = policy_facts(doc(), version=1)

    def ok(amount: int | None = 10, **filters: Any) -> bool:
        return matches(Filters(**filters), policy_id="sh-rent", policy=facts, amount_cny=amount)

    assert ok()
    assert ok(region_prefix="3101")
    assert ok(region_prefix="3")
    assert not ok(region_prefix="41")
    assert ok(issuer_level="municipal")
    assert not ok(issuer_level="national")
    assert ok(policy_ids=["sh-rent"])
    assert not ok(policy_ids=["other"])
    assert ok(benefit_kinds=["rent_subsidy", "x"])
    assert not ok(benefit_kinds=["talent"])
    assert ok(amount=500, min_amount_cny=500)
    assert not ok(amount=499, min_amount_cny=500)
    assert not ok(amount=None, min_amount_cny=1)
    unknown_policy = matches(
        Filters(issuer_level="national"), policy_id="p", policy=None, amount_cny=1
    )
    assert unknown_policy


def test_alert_keys_derive_from_the_event() -> None:
    change = {
        "subject_type": "enterprise",
        "subject_id": "e1",
        "enterprise_id": "e1",
        "policy_id": "p",
        "status": "eligible",
        "previous_status": None,
        "amount_cny": 5,
        "previous_amount_cny": None,
    }
    event_id = uuid.uuid4()
    a = eligibility_alert(event_id=event_id, occurred_at=NOW, change=change, policy=None)
    b = eligibility_alert(event_id=event_id, occurred_at=NOW, change=change, policy=None)
    c = eligibility_alert(event_id=uuid.uuid4(), occurred_at=NOW, change=change, policy=None)
    assert a.alert_key == b.alert_key != c.alert_key
    assert a.body()["type"] == "eligibility.changed"
    assert a.body()["data"]["summary"]


def test_digest_windows_and_batching() -> None:
    key, closes = digest_key(now=NOW, window_seconds=3600)
    later, _ = digest_key(now=NOW + timedelta(minutes=59), window_seconds=3600)
    after, _ = digest_key(now=NOW + timedelta(minutes=61), window_seconds=3600)
    nxt, _ = digest_key(now=NOW, window_seconds=3600, skip_windows=1)
    assert key == later != after == nxt
    assert closes == NOW.timestamp() + 3600
    items = [
        {"type": "policy.changed", "timestamp": "2026-01-02", "data": {"summary": "b"}},
        {"type": "eligibility.changed", "timestamp": "2026-01-01", "data": {"summary": "a"}},
    ]
    body = digest_body(items=items, window_seconds=3600, now=NOW)
    assert body["type"] == "digest"
    assert (body["data"]["count"], body["data"]["summary"]) == (2, ["a", "b"])
