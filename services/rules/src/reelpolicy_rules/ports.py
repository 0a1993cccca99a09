"""What the rules use cases need from the outside world (implemented in adapters)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

import polars as pl

from reelpolicy_common.outbox.store import EncodedEvent
from reelpolicy_common.uow import PublishingUnitOfWorkPort
from reelpolicy_policy import Policy
from reelpolicy_rules.domain.outcome_frames import SimulationReport
from reelpolicy_rules.domain.outcomes import Key, Outcome

Clock = Callable[[], datetime]
"""The service's time: now, as an aware datetime."""


class Row(Protocol):
    """A stored row: its values by column name."""

    def __getitem__(self, column: str, /) -> Any: ...


class ProjectionRepository(Protocol):
    """Policies, enterprises and productions as the events left them, and their locks."""

    async def lock_all(self) -> None:
        """Exclusive: no subject update runs (or holds an uncommitted seq) meanwhile."""

    async def lock_enterprises(self, enterprise_ids: Sequence[str]) -> None:
        """The shared projection lock, then each enterprise's lock in the order given."""

    async def lock_funds(self, fund_ids: Sequence[str]) -> None:
        """Each fund's lock, in the order given (pass them sorted)."""

    async def clear(self) -> None:
        """Empty the projection (policies, enterprises, productions); results stay."""

    async def policy_state(self, policy_id: str) -> tuple[int, bool] | None:
        """(version, revoked) of the stored policy."""

    async def store_policy(
        self, policy_id: str, version: int, document: dict[str, Any]
    ) -> None: ...

    async def revoke_policy(self, policy_id: str) -> None: ...

    async def latest_seqs(self) -> tuple[int, int]:
        """The largest seq of the policies and of the subjects this transaction sees
        (0 when none)."""

    async def policies_since(self, seq: int) -> Sequence[Row]:
        """``policy_id, version, document, revoked, seq`` of policies written after
        ``seq``, in seq order."""

    async def subjects_since(self, seq: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Enterprises and productions written after ``seq``: ``enterprise_id, deleted,
        attributes`` (JSON text) and ``production_id, enterprise_id, deleted, attributes``,
        each with its ``seq``."""

    async def versions(
        self, *, enterprise_ids: Sequence[str], production_ids: Sequence[str]
    ) -> dict[tuple[str, str], int]:
        """Stored versions: ("enterprise" | "production", id) -> version (absent: none)."""

    async def store_enterprises(
        self, rows: Sequence[tuple[str, int, bool, dict[str, Any]]]
    ) -> None:
        """Upsert (enterprise_id, version, deleted, attributes) rows."""

    async def store_productions(
        self, rows: Sequence[tuple[str, str, int, bool, dict[str, Any]]]
    ) -> None:
        """Upsert (production_id, enterprise_id, version, deleted, attributes) rows."""

    async def enterprises(self, enterprise_ids: Sequence[str]) -> Mapping[str, Row]: ...

    async def productions_for(
        self, *, enterprise_ids: Sequence[str], production_ids: Sequence[str]
    ) -> Sequence[Row]:
        """Every production of ``enterprise_ids``, and the ``production_ids`` ones."""

    async def enterprise(self, enterprise_id: str) -> Row | None: ...

    async def productions_of(
        self, enterprise_id: str, *, only: str | None = None
    ) -> Sequence[Row]: ...

    async def enterprise_of_production(self, production_id: str) -> str | None: ...

    async def last_day(self) -> date | None:
        """The last day the clock evaluated."""

    async def set_last_day(self, day: date) -> None: ...


class ResultRepository(Protocol):
    """Current results (eligible / unknown only: absent means ineligible) and their history."""

    async def for_subjects(self, subject_ids: Sequence[str]) -> dict[Key, Outcome]: ...

    async def committed(self, policy_ids: Sequence[str]) -> dict[str, int]:
        """policy id -> yuan its eligible results hold (policies holding nothing are absent)."""

    async def frame_for_policies(self, policy_ids: Sequence[str]) -> pl.DataFrame:
        """Stored results of ``policy_ids`` as an outcome frame."""

    async def replace(self, deletes: Sequence[Key], rows: Sequence[tuple[Any, ...]]) -> None:
        """Delete ``deletes`` and store ``rows`` (in ``RESULT_COLUMNS`` order)."""

    async def add_history(self, rows: Sequence[tuple[Any, ...]]) -> None: ...

    async def known_changes(self, changes: Sequence[tuple[str, str, uuid.UUID]]) -> set[uuid.UUID]:
        """Which of these (subject id, policy id, event id) changes the history holds."""

    async def for_enterprise(
        self, enterprise_id: str, *, subject_id: str | None = None
    ) -> Sequence[Row]: ...

    async def history(self, subject_id: str, policy_id: str) -> Sequence[Row]: ...

    async def policies_other_than(self, policy_ids: Sequence[str]) -> list[str]:
        """Policies that have results but are not among ``policy_ids``."""


class UnitOfWork(PublishingUnitOfWorkPort, Protocol):
    @property
    def projection(self) -> ProjectionRepository: ...

    @property
    def results(self) -> ResultRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def begin(self) -> None:
        """Open the next transaction on the same connection, after ``commit``."""

    async def read_only_snapshot(self) -> None:
        """Make this transaction READ ONLY and REPEATABLE READ: every read sees one
        snapshot of the database. Call it first; it takes no lock."""

    async def hold_projection(self) -> None:
        """The exclusive projection lock, held across this unit of work's commits until
        it closes."""

    async def processed(self, *, consumer: str, event_id: uuid.UUID) -> bool:
        """Whether the event was recorded as processed (records nothing)."""

    async def first_time(self, *, consumer: str, event_id: uuid.UUID) -> bool:
        """Record the event as processed; False if it already was (idempotency)."""

    async def first_times(self, *, consumer: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Record the events as processed; returns those that were not yet."""

    async def apply_api_key_changed(self, payload: dict[str, object]) -> None:
        """Project an ``api_key.changed`` event into this service's API keys."""

    async def publish_encoded(
        self, topic: str, events: Iterable[EncodedEvent], *, count: int
    ) -> None:
        """Write ``count`` encoded events to the outbox now (``COPY``), in this transaction."""

    async def drop_unsent(self, topic: str, keys: Sequence[str]) -> int:
        """Delete the outbox rows of ``topic`` with these keys that are not published yet;
        returns how many."""

    async def unsent_event_ids(self, topic: str) -> set[uuid.UUID]:
        """The event ids of the outbox rows of ``topic`` not published yet."""

    async def drop_unsent_events(self, topic: str, event_ids: Sequence[uuid.UUID]) -> int:
        """Delete the outbox rows of ``topic`` with these event ids that are not published
        yet; returns how many."""


UnitOfWorkFactory = Callable[[], UnitOfWork]


class PolicyBook(Protocol):
    """Every policy of the projection, parsed: current version, revoked or not."""

    @property
    def policies(self) -> Mapping[str, Policy]: ...

    @property
    def versions(self) -> Mapping[str, int]: ...

    @property
    def seq(self) -> int:
        """The largest seq read so far."""

    async def refresh(self, projection: ProjectionRepository) -> None:
        """Read the policies written since the last refresh."""

    def copy(self) -> PolicyBook:
        """A book holding this one's current state (no await: one consistent state);
        refreshing the copy leaves this one as it is."""

    def reset(self) -> None:
        """Forget every policy (the next refresh reads them all)."""

    def active(self) -> list[Policy]:
        """The policies not revoked, by id."""


class SubjectCache(Protocol):
    """Every enterprise and production, in the policy engine's columnar layout.

    Refresh the shared cache only while holding the exclusive projection lock
    (``lock_all``); a ``copy()`` may be refreshed inside a read-only snapshot instead.
    """

    @property
    def seq(self) -> int:
        """The largest seq read so far."""

    async def refresh(self, projection: ProjectionRepository) -> int:
        """Read the subjects written since the last refresh; returns how many."""

    def copy(self) -> SubjectCache:
        """A cache holding this one's current state (no await: one consistent state);
        refreshing the copy leaves this one as it is."""

    def reset(self) -> None:
        """Forget every subject (the next refresh reads them all)."""

    def frame(self, subject_type: str) -> pl.DataFrame:
        """Live subjects of one type, in the engine layout, plus ``enterprise_id``."""


Partition = tuple[str, int]
"""(topic, partition number)."""


class ReplayedRecord(Protocol):
    """A record read back from a topic."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


OnRecord = Callable[[ReplayedRecord], Awaitable[None]]


class TopicReader(Protocol):
    """Reads whole topics: each partition from its start up to the end it had when the
    read reached it (records written later are left to the service)."""

    async def open(self, topic_names: Sequence[str]) -> None:
        """Connect and find every partition of ``topic_names`` (the ones read later)."""

    async def read_to_ends(
        self, topic_names: Sequence[str], on_record: OnRecord
    ) -> dict[Partition, int]:
        """Hand every record below its partition's end to ``on_record``, in partition
        order; returns each partition's end (the offset to commit). Raises if the read
        stalls."""

    async def close(self) -> None: ...


class ConsumerGroups(Protocol):
    """The service's consumer groups, one per topic it consumes."""

    async def move(self, ends: Mapping[Partition, int]) -> dict[str, str]:
        """Commit ``ends`` for the group of each topic; returns how each group was moved
        (group id -> "standalone" or "joined")."""


class Simulator(Protocol):
    """Runs simulations of draft policies apart from live work (``POST /v1/simulate``)."""

    async def simulate(self, *, draft: Policy, today: date, sample_size: int) -> SimulationReport:
        """What ``draft`` would change over the projection as one snapshot sees it."""

    def close(self) -> None:
        """Stop whatever the simulator started (on shutdown)."""
