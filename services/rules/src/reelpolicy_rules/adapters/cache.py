"""In-process caches of the projection, refreshed incrementally by change seq.

Every projection write takes the next ``rules_change_seq`` value; a refresh fetches
the rows with a larger seq. The shared caches are refreshed only while holding the
exclusive projection lock (``lock_all``): then no writer holds an uncommitted smaller
seq, so none is skipped. A *copy* (``copy()``) may instead be refreshed inside one
read-only snapshot: it then holds the projection as that snapshot saw it, and is thrown
away after use, so a row committed later with a smaller seq is never missed by anyone.

Each cache keeps its state in one immutable value replaced as a whole, so a copy taken
between two awaits is always one consistent state (rows and seq cursor together). The
states pickle, so another process can hold a cache in the same state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import polars as pl

from reelpolicy_policy import Policy, parse_policy
from reelpolicy_rules.domain.subject_frame import (
    enterprise_frame,
    enterprise_rows,
    production_frame,
    production_rows,
)
from reelpolicy_rules.ports import ProjectionRepository, Row


def _upsert(frame: pl.DataFrame | None, rows: pl.DataFrame, key: str) -> pl.DataFrame:
    if frame is None:
        return rows
    if rows.is_empty():
        return frame
    return pl.concat([frame.filter(~pl.col(key).is_in(rows[key].implode())), rows])


@dataclass(frozen=True)
class SubjectState:
    """Every subject as of ``seq``, and the engine frames built from them so far."""

    seq: int = 0
    enterprises: pl.DataFrame | None = None
    productions: pl.DataFrame | None = None
    # built lazily; written into from worker threads, and shared by copies of this state
    # (every frame it holds is derived from these same rows)
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)

    def __getstate__(self) -> dict[str, object]:
        # the frames are derived from the rows: another process builds its own
        return {**self.__dict__, "frames": {}}

    def with_changes(self, ent: pl.DataFrame, prod: pl.DataFrame) -> SubjectState:
        """This state with the rows of ``subjects_since(self.seq)`` applied (CPU only)."""
        if self.enterprises is not None and ent.is_empty() and prod.is_empty():
            return self
        ent_rows = enterprise_rows(ent).with_columns(ent["deleted"])
        prod_rows = production_rows(prod).with_columns(prod["deleted"])
        top = [f.select(pl.col("seq").max()).item() for f in (ent, prod)]
        return SubjectState(
            seq=max([self.seq] + [int(v) for v in top if v is not None]),
            enterprises=_upsert(self.enterprises, ent_rows, "enterprise_id"),
            productions=_upsert(self.productions, prod_rows, "subject_id"),
        )

    def frame(self, subject_type: str) -> pl.DataFrame:
        if subject_type in self.frames:
            return self.frames[subject_type]
        if self.enterprises is None or self.productions is None:
            raise RuntimeError("the subject cache is not loaded")
        live = self.enterprises.filter(~pl.col("deleted")).drop("deleted")
        if subject_type == "enterprise":
            out = enterprise_frame(live)
        else:
            gone = self.enterprises.filter(pl.col("deleted"))["enterprise_id"].implode()
            prods = self.productions.filter(
                ~pl.col("deleted") & ~pl.col("enterprise_id").is_in(gone)
            ).drop("deleted")
            out = production_frame(prods, live)
        self.frames[subject_type] = out
        return out


class PolarsSubjectCache:
    """Enterprises and productions in the engine's columnar layout (polars)."""

    def __init__(self, state: SubjectState | None = None) -> None:
        """Empty, or in ``state`` (another cache's, maybe sent from another process)."""
        self._state = SubjectState() if state is None else state

    @property
    def state(self) -> SubjectState:
        return self._state

    @property
    def seq(self) -> int:
        return self._state.seq

    async def refresh(self, projection: ProjectionRepository) -> int:
        """Fetch rows changed since the last refresh; returns how many."""
        ent, prod = await projection.subjects_since(self._state.seq)
        # decoding the rows' JSON is CPU work polars does without the GIL: off the loop
        self._state = await asyncio.to_thread(self._state.with_changes, ent, prod)
        return ent.height + prod.height

    def copy(self) -> PolarsSubjectCache:
        """A cache holding this one's current state; refreshing it leaves this one as is."""
        return PolarsSubjectCache(self._state)

    def reset(self) -> None:
        """Forget every subject (the next refresh reads them all)."""
        self._state = SubjectState()

    def frame(self, subject_type: str) -> pl.DataFrame:
        """Live subjects of one type, in the engine layout, plus ``enterprise_id``."""
        return self._state.frame(subject_type)


@dataclass(frozen=True)
class PolicyState:
    seq: int = 0
    policies: dict[str, Policy] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    revoked: frozenset[str] = frozenset()

    def with_changes(self, rows: list[Row]) -> PolicyState:
        """This state with the rows of ``policies_since(self.seq)`` applied."""
        if not rows:
            return self
        policies, versions, revoked = dict(self.policies), dict(self.versions), set(self.revoked)
        seq = self.seq
        for row in rows:
            pid = row["policy_id"]
            policies[pid] = parse_policy(row["document"])
            versions[pid] = row["version"]
            if row["revoked"]:
                revoked.add(pid)
            else:
                revoked.discard(pid)
            seq = max(seq, row["seq"])
        return PolicyState(seq, policies, versions, frozenset(revoked))


class InMemoryPolicyBook:
    """Every policy of the projection, parsed: current version, revoked or not."""

    def __init__(self, state: PolicyState | None = None) -> None:
        """Empty, or in ``state`` (another book's, maybe sent from another process)."""
        self._state = PolicyState() if state is None else state

    @property
    def state(self) -> PolicyState:
        return self._state

    @property
    def seq(self) -> int:
        return self._state.seq

    @property
    def policies(self) -> dict[str, Policy]:
        return self._state.policies

    @property
    def versions(self) -> dict[str, int]:
        return self._state.versions

    @property
    def revoked(self) -> frozenset[str]:
        return self._state.revoked

    async def refresh(self, projection: ProjectionRepository) -> None:
        rows = list(await projection.policies_since(self._state.seq))
        state = self._state.with_changes(rows)
        # two concurrent refreshes (subject updates share the projection lock): the one
        # that read further wins, whichever finishes last
        if state.seq >= self._state.seq:
            self._state = state

    def copy(self) -> InMemoryPolicyBook:
        """A book holding this one's current state; refreshing it leaves this one as is."""
        return InMemoryPolicyBook(self._state)

    def reset(self) -> None:
        """Forget every policy (the next refresh reads them all)."""
        self._state = PolicyState()

    def active(self) -> list[Policy]:
        return [p for pid, p in sorted(self.policies.items()) if pid not in self.revoked]
