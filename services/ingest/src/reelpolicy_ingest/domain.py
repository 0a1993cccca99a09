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

import yaml

from reelpolicy_policy.limits import MAX_DOCUMENT_DEPTH


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


MAX_CANONICAL_DOCUMENT_BYTES = 512 * 1024
"""The largest policy document stored, in canonical JSON: its ``policy.published``
event must fit in the outbox's bound (``MAX_EVENT_BYTES``, 900 KiB) with room to spare."""
MAX_YAML_NODES = 200_000
"""YAML nodes a document may expand to (aliases counted each time they are used)."""


class DocumentTooLargeError(Exception):
    """A document whose canonical form (or YAML expansion) is over its limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_document_size(canonical: dict[str, Any]) -> None:
    """Refuse a canonical document over :data:`MAX_CANONICAL_DOCUMENT_BYTES`."""
    size = len(json.dumps(canonical, ensure_ascii=False).encode())
    if size > MAX_CANONICAL_DOCUMENT_BYTES:
        raise DocumentTooLargeError(
            f"the document is {size} bytes in canonical form;"
            f" at most {MAX_CANONICAL_DOCUMENT_BYTES} are stored"
        )


_TOO_DEEP = f"the YAML is nested deeper than {MAX_DOCUMENT_DEPTH} levels (MAX_DOCUMENT_DEPTH)"


def check_yaml_expansion(text: str | bytes) -> None:
    """Refuse YAML whose aliases expand past :data:`MAX_YAML_NODES` nodes, before it is
    loaded: a small text can name one anchor many times over, many levels deep, and
    become megabytes (or more) once expanded. Counted on the composed node graph, where
    an alias is a shared node, so the count costs what the text does. Syntax errors are
    left to the loader (to report them)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return
    except RecursionError:
        raise DocumentTooLargeError(_TOO_DEEP) from None
    sizes: dict[int, int] = {}

    def expanded(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(expanded(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(expanded(k) + expanded(v) for k, v in node.value)
        sizes[id(node)] = total
        return total

    try:
        if root is not None and expanded(root) > MAX_YAML_NODES:
            raise DocumentTooLargeError(f"the YAML expands to more than {MAX_YAML_NODES} nodes")
    except RecursionError:
        raise DocumentTooLargeError(_TOO_DEEP) from None
