"""What notify needs to know about a policy document, read from its JSON (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

ANY_REGION_LEVELS = frozenset({"national", "platform"})


def region_prefix(region_code: str | None) -> str | None:
    """``310000`` -> ``31``, ``410100`` -> ``4101``, ``310110`` -> ``310110``; None: any."""
    if not region_code:
        return None
    code = region_code
    while code.endswith("00") and len(code) > 2:
        code = code[:-2]
    return code


@dataclass(frozen=True)
class PolicyFacts:
    policy_id: str
    version: int
    title: str
    issuer_level: str | None
    region_prefix: str | None  # None: the policy can concern any region
    benefit_kinds: frozenset[str]
    max_amount_cny: int | None
    expires_on: date | None
    revoked: bool = False
    title_zh: str | None = None  # the document's Chinese title, for zh-CN alerts


def title_of(document: dict[str, Any]) -> str:
    title = document.get("title") or {}
    if isinstance(title, dict):
        return str(title.get("en") or title.get("zh") or document.get("id", ""))
    return str(title)


def chinese_title(document: dict[str, Any]) -> str | None:
    title = document.get("title")
    return str(title["zh"]) if isinstance(title, dict) and title.get("zh") else None


def expires_on(document: dict[str, Any]) -> date | None:
    raw = (document.get("effective") or {}).get("to")
    return date.fromisoformat(raw) if isinstance(raw, str) else None


def policy_facts(document: dict[str, Any], *, version: int, revoked: bool = False) -> PolicyFacts:
    issuer = document.get("issuer") or {}
    level = issuer.get("level")
    benefits = document.get("benefits") or []
    caps = [b["max_amount_cny"] for b in benefits if b.get("max_amount_cny") is not None]
    return PolicyFacts(
        policy_id=str(document.get("id", "")),
        version=version,
        title=title_of(document),
        issuer_level=level,
        region_prefix=None
        if level in ANY_REGION_LEVELS
        else region_prefix(issuer.get("region_code")),
        benefit_kinds=frozenset(str(b.get("kind")) for b in benefits if b.get("kind")),
        max_amount_cny=max(caps) if caps else None,
        expires_on=expires_on(document),
        revoked=revoked,
        title_zh=chinese_title(document),
    )


def region_within(region_code: str, prefix: str | None) -> bool:
    """Whether an enterprise in ``region_code`` lies in a policy's region (None: anywhere)."""
    return prefix is None or region_code.startswith(prefix)
