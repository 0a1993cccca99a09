"""In-process caches of the projection, refreshed incrementally by change seq.

Every projection write takes the next ``rules_change_seq`` value; a refresh fetches
the rows with a larger seq. Refresh only while holding the exclusive projection lock
(``lock_all``): then no writer holds an uncommitted smaller seq, so none is skipped.
"""

from __future__ import annotations

import polars as pl

from reelpolicy_policy import Policy, parse_policy
from reelpolicy_rules.domain.subject_frame import (
    enterprise_frame,
    enterprise_rows,
    production_frame,
    production_rows,
)
from reelpolicy_rules.ports import ProjectionRepository


def _upsert(frame: pl.DataFrame | None, rows: pl.DataFrame, key: str) -> pl.DataFrame:
    if frame is None:
        return rows
    if rows.is_empty():
        return frame
    return pl.concat([frame.filter(~pl.col(key).is_in(rows[key].implode())), rows])


class PolarsSubjectCache:
    """Enterprises and productions in the engine's columnar layout (polars)."""

    def __init__(self) -> None:
        self.seq = 0
        self._enterprises: pl.DataFrame | None = None
        self._productions: pl.DataFrame | None = None
        self._frames: dict[str, pl.DataFrame] = {}

    async def refresh(self, projection: ProjectionRepository) -> int:
        """Fetch rows changed since the last refresh; returns how many."""
        ent, prod = await projection.subjects_since(self.seq)
        if self._enterprises is not None and ent.is_empty() and prod.is_empty():
            return 0
        ent_rows = enterprise_rows(ent).with_columns(ent["deleted"])
        prod_rows = production_rows(prod)
        prod_rows = prod_rows.with_columns(prod["deleted"])
        self._enterprises = _upsert(self._enterprises, ent_rows, "enterprise_id")
        self._productions = _upsert(self._productions, prod_rows, "subject_id")
        top = [f.select(pl.col("seq").max()).item() for f in (ent, prod)]
        self.seq = max([self.seq] + [int(v) for v in top if v is not None])
        self._frames = {}
        return ent.height + prod.height

    def frame(self, subject_type: str) -> pl.DataFrame:
        """Live subjects of one type, in the engine layout, plus ``enterprise_id``."""
        if subject_type in self._frames:
            return self._frames[subject_type]
        if self._enterprises is None or self._productions is None:
            raise RuntimeError("the subject cache is not loaded")
        live = self._enterprises.filter(~pl.col("deleted")).drop("deleted")
        if subject_type == "enterprise":
            out = enterprise_frame(live)
        else:
            gone = self._enterprises.filter(pl.col("deleted"))["enterprise_id"].implode()
            prods = self._productions.filter(
                ~pl.col("deleted") & ~pl.col("enterprise_id").is_in(gone)
            ).drop("deleted")
            out = production_frame(prods, live)
        self._frames[subject_type] = out
        return out


class InMemoryPolicyBook:
    """Every policy of the projection, parsed: current version, revoked or not."""

    def __init__(self) -> None:
        self.seq = 0
        self.policies: dict[str, Policy] = {}
        self.versions: dict[str, int] = {}
        self.revoked: set[str] = set()

    async def refresh(self, projection: ProjectionRepository) -> None:
        for row in await projection.policies_since(self.seq):
            pid = row["policy_id"]
            self.policies[pid] = parse_policy(row["document"])
            self.versions[pid] = row["version"]
            if row["revoked"]:
                self.revoked.add(pid)
            else:
                self.revoked.discard(pid)
            self.seq = max(self.seq, row["seq"])

    def active(self) -> list[Policy]:
        return [p for pid, p in sorted(self.policies.items()) if pid not in self.revoked]
