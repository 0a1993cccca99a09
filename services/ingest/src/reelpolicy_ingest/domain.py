"""Versioning rules for policy documents (pure).

A submitted document is validated and put in canonical form by the policy engine;
here we decide what storing it means: a new version, a no-op (identical to the
latest), or a conflict (a supplied ``version`` that is not the next one).

Revocation is sticky: a document identical to a revoked latest version is a no-op,
so re-syncing the catalog (every ``make up``) never republishes what an operator
revoked. A changed document is a new publication: it becomes the next version and
the policy is live again (there is no other way to reinstate a policy).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class StoredPolicy:
    policy_id: str
    version: int
    document: dict[str, Any]
    content_sha: str
    revoked: bool = False


@dataclass(frozen=True)
class Decision:
    outcome: Literal["create", "unchanged", "conflict"]
    version: int
    message: str = ""


def content_sha(document: dict[str, Any]) -> str:
    """Hash of the canonical document without its version: equal content, equal hash."""
    body = {k: v for k, v in document.items() if k != "version"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def decide_version(
    *, latest: StoredPolicy | None, supplied_version: int | None, sha: str
) -> Decision:
    """What to do with a valid submission, given the latest stored version."""
    next_version = 1 if latest is None else latest.version + 1
    if latest is not None and sha == latest.content_sha:
        # an explicit next version of the same content republishes a live policy,
        # but never brings a revoked one back
        reinstating = latest.revoked and supplied_version == next_version
        if supplied_version in (None, latest.version) or reinstating:
            return Decision("unchanged", latest.version)
    if supplied_version is not None and supplied_version != next_version:
        return Decision(
            "conflict",
            next_version,
            f"version {supplied_version} is not the next version ({next_version})",
        )
    return Decision("create", next_version)
