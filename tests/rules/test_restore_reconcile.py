"""``reelpolicy-rules restore-reconcile``'s steps with fakes: which published changes a
restored database lost (``LostChanges``) and how they are written back (``write_back``).

The whole procedure runs on the real servers in tests/deploy/test_backup_restore.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import EligibilityChanged, Envelope, EventType
from reelpolicy_rules.domain.outcomes import Key
from reelpolicy_rules.handlers.eligibility_changes import eligibility_event
from reelpolicy_rules.handlers.restore_reconcile import LostChanges, PublishedChange, write_back


@dataclass(frozen=True)
class Record:
    """A record read back from the eligibility topic."""

    value: bytes | None
    offset: int = 0
    topic: str = topics.ELIGIBILITY
    partition: int = 0
    headers: Sequence[tuple[str, bytes]] = ()


def change(
    subject_id: str,
    *,
    was: str | None,
    now: str,
    amount: int | None,
    previous_amount: int | None = None,
    version: int = 1,
    policy_id: str = "pol",
) -> Envelope:
    row = {
        "subject_type": "production",
        "subject_id": subject_id,
        "enterprise_id": "ent",
        "policy_id": policy_id,
        "policy_version": version,
        "previous_status": was,
        "status": now,
        "previous_amount_cny": previous_amount,
        "amount_cny": amount,
        "missing_fields": [],
        "explanation": {"why": f"{subject_id} {now}"},
    }
    return eligibility_event(row, cause=str(uuid.uuid4()))


class History:
    """The restored history: the event ids it holds; records every lookup."""

    def __init__(self, *held: Envelope) -> None:
        self.held = {e.event_id: e for e in held}
        self.lookups: list[list[tuple[str, str, uuid.UUID]]] = []

    async def __call__(self, changes: Sequence[tuple[str, str, uuid.UUID]]) -> set[uuid.UUID]:
        self.lookups.append(list(changes))
        return {
            event_id
            for subject_id, policy_id, event_id in changes
            if event_id in self.held
            and self.held[event_id].payload["subject_id"] == subject_id
            and self.held[event_id].payload["policy_id"] == policy_id
        }


async def fold(history: History, *events: Envelope | bytes, batch: int = 100) -> LostChanges:
    lost = LostChanges(history, batch=batch)
    for offset, e in enumerate(events):
        await lost.add(Record(e if isinstance(e, bytes) else e.to_bytes(), offset=offset))
    await lost.finish()
    return lost


def ids(lost: LostChanges) -> dict[Key, list[uuid.UUID]]:
    return {key: [p.event_id for p in changes] for key, changes in lost.lost.items()}


@pytest.mark.parametrize("batch", [1, 2, 100])
async def test_the_changes_after_the_last_one_the_history_holds_are_lost(batch: int) -> None:
    a1 = change("a", was=None, now="eligible", amount=1000)
    a2 = change("a", was="eligible", now="eligible", amount=2000, previous_amount=1000)
    a3 = change("a", was="eligible", now="ineligible", amount=None, previous_amount=2000)
    b1 = change("b", was=None, now="eligible", amount=1000)
    b2 = change("b", was="eligible", now="eligible", amount=2000, previous_amount=1000)
    c1 = change("c", was=None, now="eligible", amount=1000)
    history = History(a1, b1, b2, c1)  # the dump held these

    lost = await fold(history, a1, b1, a2, c1, b2, a3, batch=batch)

    assert ids(lost) == {("a", "pol"): [a2.event_id, a3.event_id]}  # in published order
    assert (lost.read, lost.skipped) == (6, 0)
    looked_up = [c for lookup in history.lookups for c in lookup]
    assert looked_up == [
        (e.payload["subject_id"], "pol", e.event_id) for e in (a1, b1, a2, c1, b2, a3)
    ]
    assert all(len(lookup) <= batch for lookup in history.lookups)


async def test_a_change_the_history_holds_clears_what_came_before_it() -> None:
    # The history may hold a change later than ones it lacks (a previous reconcile wrote
    # them back, or they were published twice): it holds everything up to it.
    a1 = change("a", was=None, now="eligible", amount=1000)
    a2 = change("a", was="eligible", now="eligible", amount=2000, previous_amount=1000)
    lost = await fold(History(a2), a1, a2)
    assert lost.lost == {}


async def test_a_change_published_twice_is_lost_once_and_other_records_are_left_out() -> None:
    a1 = change("a", was=None, now="eligible", amount=1000)
    a1_other_policy = change("a", was=None, now="unknown", amount=None, policy_id="other")
    impact = Envelope(
        type=EventType.policy_impact,
        producer="rules",
        key="pol",
        payload={"policy_id": "pol", "policy_version": 2},
    )
    lost = await fold(History(), a1, impact, b"not an envelope", a1, a1_other_policy)
    assert ids(lost) == {
        ("a", "pol"): [a1.event_id],
        ("a", "other"): [a1_other_policy.event_id],
    }
    assert (lost.read, lost.skipped) == (3, 1)


@dataclass
class Results:
    """The results repository's writes."""

    deleted: list[Key] = field(default_factory=list)
    stored: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)

    async def replace(self, deletes: Sequence[Key], rows: Sequence[tuple[Any, ...]]) -> None:
        self.deleted += deletes
        self.stored += rows

    async def add_history(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.history += rows


@dataclass
class Work:
    results: Results = field(default_factory=Results)


def published(e: Envelope) -> PublishedChange:
    return PublishedChange(e.event_id, EligibilityChanged.model_validate(e.payload))


async def test_write_back_stores_each_keys_last_result_and_every_change_in_the_history() -> None:
    a2 = change("a", was="eligible", now="eligible", amount=2000, previous_amount=1000, version=2)
    a3 = change("a", was="eligible", now="unknown", amount=None, previous_amount=2000, version=3)
    b2 = change("b", was="eligible", now="ineligible", amount=None, previous_amount=1000)
    work = Work()

    written = await write_back(
        work,  # type: ignore[arg-type]  # only its results are used
        {("a", "pol"): [published(a2), published(a3)], ("b", "pol"): [published(b2)]},
    )

    assert written == 3
    assert work.results.deleted == [("b", "pol")]
    assert work.results.stored == [
        ("production", "a", "pol", "ent", 3, "unknown", None, [], {"why": "a unknown"})
    ]
    assert work.results.history == [
        (
            e.payload["subject_id"],
            "pol",
            "ent",
            e.payload["policy_version"],
            e.payload["previous_status"],
            e.payload["status"],
            e.payload["previous_amount_cny"],
            e.payload["amount_cny"],
            e.payload["cause"],  # the original cause and event id: the history is whole again
            e.event_id,
        )
        for e in (a2, a3, b2)
    ]
