"""The overview of an enterprise: its record, productions, totals and latest changes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from reelpolicy_portal.domain.eligibility import Row, Summary, in_display_order, summarize
from reelpolicy_portal.ports import Services

LATEST_CHANGES = 8
HISTORIES_READ = 20
"""Results whose history is read for "latest changes" (the eligible and unknown first)."""


@dataclass(frozen=True)
class Overview:
    enterprise: dict[str, Any]
    productions: list[dict[str, Any]]
    rows: list[Row]
    summary: Summary
    latest_changes: list[dict[str, Any]]


async def eligibility_rows(services: Services, api_key: str, enterprise_id: str) -> list[Row]:
    items = await services.eligibility(api_key, enterprise_id)
    return in_display_order([Row.from_api(item) for item in items])


async def overview(services: Services, api_key: str, enterprise_id: str) -> Overview:
    enterprise, productions, rows = await asyncio.gather(
        services.enterprise(api_key, enterprise_id),
        services.productions(api_key, enterprise_id),
        eligibility_rows(services, api_key, enterprise_id),
    )
    watched = [r for r in rows if r.status != "ineligible"][:HISTORIES_READ]
    histories = await asyncio.gather(
        *(services.history(api_key, r.subject_id, r.policy_id) for r in watched)
    )
    changes = [
        {
            **entry,
            "policy_id": row.policy_id,
            "subject_type": row.subject_type,
            "subject_id": row.subject_id,
        }
        for row, entries in zip(watched, histories, strict=True)
        for entry in entries
    ]
    changes.sort(key=lambda c: str(c["changed_at"]), reverse=True)
    return Overview(enterprise, productions, rows, summarize(rows), changes[:LATEST_CHANGES])
