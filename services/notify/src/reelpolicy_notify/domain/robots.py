"""Group robots of WeCom (企业微信), DingTalk (钉钉) and Feishu (飞书): the request each
platform expects for a markdown message, its signature, and what its answer means (pure).

- WeCom: ``{"msgtype": "markdown", "markdown": {"content": ...}}``; no signature (the
  webhook URL's ``key`` is the credential).
- DingTalk: ``{"msgtype": "markdown", "markdown": {"title", "text"}}``; with a secret
  ("加签"), the query gains ``timestamp`` (ms) and ``sign`` = URL-encoded base64 of
  HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}").
- Feishu: an interactive card (header title, one markdown element); with a secret, the
  body gains ``timestamp`` (s) and ``sign`` = base64 of
  HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"").

Each answers HTTP 200 with a code in the body (``errcode``, Feishu ``code``) and refuses
a message with a code other than 0: rate limits and "busy" are worth retrying, the rest
(a wrong signature, a keyword missing, a malformed message) fails for good.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from reelpolicy_notify.domain.records import RobotChannel

# Codes that mean "not now": -1 system busy on every platform; WeCom 45009 API frequency
# out of limit; DingTalk 130101 more than 20 messages a minute and 410100 rate limited;
# Feishu 11232 frequency limited.
RETRYABLE_CODES: dict[str, frozenset[int]] = {
    "wecom": frozenset({-1, 45009}),
    "dingtalk": frozenset({-1, 130101, 410100}),
    "feishu": frozenset({-1, 11232}),
}


@dataclass(frozen=True)
class RobotRequest:
    url: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class RobotRefusal:
    verdict: Literal["retry", "failed"]
    error: str


# The rendered markdown leads with its title as a heading (``### title``).


def wecom_payload(title: str, markdown: str) -> dict[str, Any]:
    # WeCom's markdown has no separate title: the content's heading is it.
    return {"msgtype": "markdown", "markdown": {"content": markdown}}


def dingtalk_payload(title: str, markdown: str) -> dict[str, Any]:
    # DingTalk shows ``title`` only in the conversation list; the text carries its own.
    return {"msgtype": "markdown", "markdown": {"title": title, "text": markdown}}


def feishu_payload(title: str, markdown: str) -> dict[str, Any]:
    # The card's header shows the title: the heading would say it twice.
    heading, _, rest = markdown.partition("\n")
    body = rest.lstrip("\n") if heading.startswith("### ") else markdown
    return {
        "msg_type": "interactive",
        "card": {
            "header": {"title": {"tag": "plain_text", "content": title}, "template": "blue"},
            "elements": [{"tag": "markdown", "content": body}],
        },
    }


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(secret, "timestamp\\nsecret")), before URL encoding."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """base64(HMAC-SHA256(key="timestamp\\nsecret", msg=b""))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    extra = urlencode(params)  # quote_plus: the base64 '+', '/' and '=' are escaped
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def robot_request(
    channel: RobotChannel, *, url: str, title: str, markdown: str, secret: str | None, now: datetime
) -> RobotRequest:
    """The URL to post to and the JSON payload, signed at ``now`` when a secret is set."""
    if channel == "wecom":
        return RobotRequest(url, wecom_payload(title, markdown))
    if channel == "dingtalk":
        payload = dingtalk_payload(title, markdown)
        if secret is None:
            return RobotRequest(url, payload)
        millis = int(now.timestamp() * 1000)
        signed = _with_query(url, timestamp=str(millis), sign=dingtalk_sign(secret, millis))
        return RobotRequest(signed, payload)
    payload = feishu_payload(title, markdown)
    if secret is not None:
        seconds = int(now.timestamp())
        payload = {"timestamp": str(seconds), "sign": feishu_sign(secret, seconds), **payload}
    return RobotRequest(url, payload)


def robot_refusal(channel: RobotChannel, answer: str | None) -> RobotRefusal | None:
    """What a 2xx answer's body says: None when the robot took the message."""
    try:
        parsed = json.loads(answer or "")
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return RobotRefusal("failed", f"{channel} answered without a JSON result code")
    if channel == "feishu":  # ``code``; older robots answer ``StatusCode``
        code = parsed.get("code", parsed.get("StatusCode"))
        message = parsed.get("msg", parsed.get("StatusMessage"))
    else:
        code, message = parsed.get("errcode"), parsed.get("errmsg")
    if code == 0:
        return None
    if not isinstance(code, int) or isinstance(code, bool):
        return RobotRefusal("failed", f"{channel} answered without a JSON result code")
    verdict: Literal["retry", "failed"] = "retry" if code in RETRYABLE_CODES[channel] else "failed"
    return RobotRefusal(verdict, f"{channel} refused the message: code {code}: {message}"[:500])
