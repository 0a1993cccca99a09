"""The policy catalog and one policy's versions with what changed in each."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from reelpolicy_portal.domain.catalog import CatalogFilter, filter_choices, matches
from reelpolicy_portal.domain.errors import NotFoundError
from reelpolicy_portal.domain.policy_diff import Change, describe_changes
from reelpolicy_portal.ports import Services

VERSIONS_READ = 4
"""Versions fetched at once for a policy's history."""


@dataclass(frozen=True)
class Catalog:
    policies: list[dict[str, Any]]
    choices: dict[str, list[tuple[str, str]]]


@dataclass(frozen=True)
class Version:
    number: int
    document: dict[str, Any]
    changes: list[Change]


async def catalog(services: Services, api_key: str, wanted: CatalogFilter) -> Catalog:
    every = await services.policies(api_key)
    chosen = sorted((p for p in every if matches(p, wanted)), key=lambda p: str(p.get("id")))
    return Catalog(chosen, filter_choices(every))


async def versions(services: Services, api_key: str, policy_id: str) -> list[Version]:
    """Every version, newest first, each with its changes from the one before."""
    latest = next((p for p in await services.policies(api_key) if p.get("id") == policy_id), None)
    if latest is None:
        raise NotFoundError()
    limit = asyncio.Semaphore(VERSIONS_READ)

    async def one(number: int) -> dict[str, Any]:
        async with limit:
            return await services.policy_version(api_key, policy_id, number)

    count = int(latest["version"])
    documents = await asyncio.gather(*(one(n) for n in range(1, count + 1)))
    found = [
        Version(n, doc, describe_changes(documents[n - 2] if n > 1 else None, doc))
        for n, doc in zip(range(1, count + 1), documents, strict=True)
    ]
    return list(reversed(found))
