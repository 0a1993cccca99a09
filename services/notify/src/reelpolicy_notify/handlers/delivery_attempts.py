"""One delivery attempt: sign, send (in a CLIENT span under the event's trace), decide.

Also: telling an endpoint's owner it was disabled (410 Gone, or failing for days) by an
``endpoint.disabled`` alert to the enterprise's other enabled subscriptions.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic_core import to_json

from reelpolicy_common.metrics import DELIVERY_ATTEMPTS
from reelpolicy_common.telemetry import context_from_headers, current_trace_headers
from reelpolicy_notify.domain.alerts import Alert, digest_body
from reelpolicy_notify.domain.attempt_outcomes import Outcome, decide_outcome
from reelpolicy_notify.domain.records import (
    ROBOT_CHANNELS,
    SIGNED_ROBOT_CHANNELS,
    ClaimedDelivery,
    RobotChannel,
    SendResult,
)
from reelpolicy_notify.domain.rendering import render
from reelpolicy_notify.domain.robots import robot_refusal, robot_request
from reelpolicy_notify.domain.signing import signature_headers
from reelpolicy_notify.handlers.fanout import AlertTarget, file_alerts
from reelpolicy_notify.ports import DeliveryQueue, EmailSender, UowFactory, WebhookSender

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("reelpolicy.notify")
DISABLED_TYPE = "endpoint.disabled"
SIGNING_CHANNELS = frozenset({"webhook", *SIGNED_ROBOT_CHANNELS})


@dataclass(frozen=True)
class DeliveryPolicy:
    schedule: tuple[float, ...]
    jitter: float
    disable_after_seconds: float


def encode_body(body: dict[str, object]) -> bytes:
    """Compact UTF-8 JSON (pydantic-core's encoder: several times faster than ``json``)."""
    return to_json(body)


async def _send(
    claimed: ClaimedDelivery,
    body: dict[str, object],
    *,
    webhooks: WebhookSender,
    emails: EmailSender,
) -> SendResult:
    if claimed.channel == "webhook" and claimed.url:
        raw = encode_body(body)
        headers = signature_headers(
            msg_id=str(claimed.id), body=raw.decode(), secrets_=claimed.secrets
        )
        headers.update(current_trace_headers())
        return await webhooks.post(claimed.url, body=raw, headers=headers)
    if claimed.channel in ROBOT_CHANNELS and claimed.url:
        return await _send_to_robot(claimed, body, webhooks=webhooks)
    return await _send_email(claimed, body, emails)


async def _send_email(
    claimed: ClaimedDelivery, body: dict[str, object], emails: EmailSender
) -> SendResult:
    """The alert in the subscription's locale, as text and HTML, with the unsubscribe
    link in both and in the headers (RFC 8058 one-click: a POST to the link)."""
    unsubscribe = emails.unsubscribe_url(claimed.subscription_id)
    alert = Alert.from_body(body)
    text = render(alert, locale=claimed.locale, fmt="text", unsubscribe_url=unsubscribe)
    html = render(alert, locale=claimed.locale, fmt="html", unsubscribe_url=unsubscribe)
    return await emails.send(
        claimed.email or "",
        subject=text.title,
        text=text.body,
        html=html.body,
        headers={
            "X-Reelpolicy-Delivery": str(claimed.id),
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            **current_trace_headers(),
        },
    )


async def _send_to_robot(
    claimed: ClaimedDelivery, body: dict[str, object], *, webhooks: WebhookSender
) -> SendResult:
    """Post the alert as the robot's markdown message, through the webhook client (same
    egress checks, timeouts and answer limits); a 2xx answer refusing it in its body is
    a failed attempt like any other."""
    channel: RobotChannel = claimed.channel  # type: ignore[assignment]  # checked by caller
    alert = Alert.from_body(body, alert_key=claimed.alert_key)
    message = render(alert, locale=claimed.locale, fmt="markdown")
    request = robot_request(
        channel,
        url=claimed.url or "",
        title=message.title,
        markdown=message.body,
        secret=claimed.secrets[0] if claimed.secrets else None,
        now=datetime.now(UTC),
    )
    result = await webhooks.post(
        request.url, body=encode_body(request.payload), headers=current_trace_headers()
    )
    if result.status_code is None or not 200 <= result.status_code < 300:
        return result
    refusal = robot_refusal(channel, result.response_body)
    if refusal is None:
        return result
    return replace(result, error=refusal.error, rejected=refusal.verdict)


def traced_url(url: str | None, *, keep_path: bool = True) -> str:
    """``url`` as a trace may record it: scheme, host, port and path, without the
    credentials, query or fragment (where receivers put their tokens); without the path
    either unless ``keep_path`` (a Feishu robot's token is its path)."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:  # not a URL a client could send to: nothing worth recording
        return ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return urlunsplit(
        (
            parts.scheme,
            host if port is None else f"{host}:{port}",
            parts.path if keep_path else "",
            "",
            "",
        )
    )


def _unsendable(claimed: ClaimedDelivery) -> SendResult | None:
    """Why ``claimed`` cannot be sent at all (never retried), or None."""
    if not claimed.enabled:
        return SendResult(None, 0, error="subscription disabled", refused=True)
    if claimed.secret_error and claimed.channel in SIGNING_CHANNELS:
        remedy = (
            "give the robot's secret again (PATCH secret)"
            if claimed.channel in ROBOT_CHANNELS
            else "rotate the subscription's secret"
        )
        return SendResult(
            None,
            0,
            error="the subscription's signing secret does not open with this server's key"
            f" ({claimed.secret_error}); was REELPOLICY_SECRET_KEY changed? Then {remedy},"
            " and replay the delivery",
            refused=True,
        )
    return None


def crashed_outcome(
    *, claimed: ClaimedDelivery, error: BaseException, policy: DeliveryPolicy
) -> Outcome:
    """The outcome of an attempt that raised: a failed attempt, retried on schedule."""
    result = SendResult(None, 0, error=f"the attempt raised {type(error).__name__}: {error}"[:500])
    return _decided(claimed, result, policy)


def _decided(claimed: ClaimedDelivery, result: SendResult, policy: DeliveryPolicy) -> Outcome:
    outcome = decide_outcome(
        claimed=claimed,
        result=result,
        schedule=policy.schedule,
        jitter=policy.jitter,
        now=datetime.now(UTC),
        disable_after_seconds=policy.disable_after_seconds,
    )
    DELIVERY_ATTEMPTS.labels(claimed.channel, outcome.metric_outcome).inc()
    return outcome


async def attempt_delivery(
    *,
    claimed: ClaimedDelivery,
    queue: DeliveryQueue,
    webhooks: WebhookSender,
    emails: EmailSender,
    policy: DeliveryPolicy,
) -> Outcome:
    """Make one attempt of a leased delivery and decide what follows (not yet stored).

    An exception raised here is the caller's to record (see :func:`crashed_outcome`)."""
    body = claimed.body
    if body is None:  # a digest whose window closed: freeze its body once, for every retry
        items = await queue.digest_items(claimed.id)
        body = digest_body(
            items=items, window_seconds=claimed.digest_window_seconds or 0, now=datetime.now(UTC)
        )
        await queue.set_body(claimed.id, body)
    parent = context_from_headers(
        {"traceparent": claimed.traceparent} if claimed.traceparent else {}
    )
    with _tracer.start_as_current_span(
        f"{claimed.channel} deliver {claimed.event_type}",
        context=parent,
        kind=SpanKind.CLIENT,
        attributes={
            "reelpolicy.delivery.id": str(claimed.id),
            "reelpolicy.delivery.attempt": claimed.total_attempts,
            "http.request.method": "POST",
            "url.full": traced_url(claimed.url, keep_path=claimed.channel not in ROBOT_CHANNELS),
        },
    ) as span:
        result = _unsendable(claimed) or await _send(
            claimed, body, webhooks=webhooks, emails=emails
        )
        if result.status_code is not None:
            span.set_attribute("http.response.status_code", result.status_code)
        if result.error:
            span.set_status(Status(StatusCode.ERROR, result.error[:200]))
    return _decided(claimed, result, policy)


async def notify_owner_disabled(*, uow: UowFactory, subscription_id: uuid.UUID) -> int:
    """Alert the enterprise's other enabled subscriptions that an endpoint was disabled."""
    now = datetime.now(UTC)
    async with uow() as work:
        disabled = await work.subscriptions.get(subscription_id)
        if disabled is None or disabled.enterprise_id is None:
            log.warning("platform-wide subscription %s disabled", subscription_id)
            return 0
        log.warning("subscription %s disabled: %s", subscription_id, disabled.disabled_reason)
        others = await work.subscriptions.page(
            enterprise_id=disabled.enterprise_id, everyone=False, after=None, limit=100
        )
        stamp = int((disabled.disabled_at or now).timestamp())
        url = target = disabled.url
        if disabled.channel in ROBOT_CHANNELS:  # a robot's URL is its credential
            url = traced_url(url, keep_path=False)
            target = f"{disabled.channel} robot at {url}"
        alert = Alert(
            alert_key=f"{DISABLED_TYPE}:{subscription_id}:{stamp}",
            type=DISABLED_TYPE,
            occurred_at=now,
            policy_id="",
            data={
                "subscription_id": str(subscription_id),
                "channel": disabled.channel,
                "url": url,
                "email": disabled.email,
                "reason": disabled.disabled_reason,
                "summary": f"endpoint {target or disabled.email} was disabled:"
                f" {disabled.disabled_reason}",
            },
        )
        targets = [AlertTarget(s, alert) for s in others if s.enabled and s.id != subscription_id]
        created = await file_alerts(work, targets, now=now)
        await work.commit()
        return created
