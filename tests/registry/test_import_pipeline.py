"""The import's chunk pipeline, against a fake unit of work that records what overlaps:
chunks of productions are written up to ``writers`` at once, a chunk holding
enterprises is written alone, and an error leaves no write running."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from reelpolicy_datagen.registry_rows import generate_rows
from reelpolicy_registry.domain.import_files import RawRow
from reelpolicy_registry.handlers.imports import import_rows


@dataclass
class FakeDatabase:
    """Committed enterprises and productions, and what was seen while writing."""

    enterprises: dict[str, str] = field(default_factory=dict)  # credit code -> id
    productions: list[str] = field(default_factory=list)  # staged ids, in commit order
    events: int = 0
    open_writes: int = 0  # units of work writing productions right now
    most_open_writes: int = 0
    overlapped_enterprise_writes: int = 0  # enterprise writes made while others ran
    fail_at_write: int | None = None  # this production write (1-based) raises
    write_seconds: float = 0.005  # a production write takes up to this long
    writes: int = 0


class WriteFailedError(Exception):
    pass


class FakeUnitOfWork:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.import_staging = self
        self._enterprises: dict[str, str] = {}
        self._productions: list[str] = []
        self._events = 0
        self._writing = False

    async def __aenter__(self) -> FakeUnitOfWork:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writing:
            self.db.open_writes -= 1

    async def upsert_enterprises(self, rows: list[tuple[uuid.UUID, str, str]]) -> list[Any]:
        if self.db.open_writes:
            self.db.overlapped_enterprise_writes += 1
        await asyncio.sleep(0.002)
        self._enterprises.update({code: str(ident) for ident, code, _ in rows})
        return [{"id": str(i), "version": 1, "credit_code": code} for i, code, _ in rows]

    async def upsert_productions(self, rows: list[Any], *, events: object) -> int:
        return await self._write_productions(rows)

    async def insert_new_productions(self, rows: list[Any], *, events: object) -> bool:
        await self._write_productions(rows)
        return True

    async def _write_productions(self, rows: list[Any]) -> int:
        self._writing = True
        self.db.open_writes += 1
        self.db.most_open_writes = max(self.db.most_open_writes, self.db.open_writes)
        self.db.writes += 1
        if self.db.writes == self.db.fail_at_write:
            raise WriteFailedError
        await asyncio.sleep(self.db.write_seconds * random.random())  # any order
        self._productions.extend(str(row[0]) for row in rows)
        self._events += len(rows)
        return len(rows)

    async def enterprise_ids(
        self, *, credit_codes: list[str], ids: list[str]
    ) -> tuple[dict[str, str], set[str]]:
        known = {c: self.db.enterprises[c] for c in credit_codes if c in self.db.enterprises}
        return known, set(ids) & set(self.db.enterprises.values())

    async def publish_many(self, topic: str, envelopes: list[Any]) -> None:
        self._events += len(envelopes)

    async def commit(self) -> None:
        await asyncio.sleep(0.001)
        self.db.enterprises.update(self._enterprises)
        self.db.productions.extend(self._productions)
        self.db.events += self._events


def file_rows(rows: list[dict[str, Any]]) -> list[RawRow]:
    return [RawRow(n, json.dumps(row, ensure_ascii=False)) for n, row in enumerate(rows, 1)]


def sample(enterprises: int = 12, productions: int = 240) -> list[dict[str, Any]]:
    return list(generate_rows(enterprises=enterprises, productions=productions, seed=11))


@pytest.mark.parametrize("writers", [1, 2, 3])
async def test_chunks_of_productions_are_written_up_to_writers_at_once(writers: int) -> None:
    db = FakeDatabase()
    report = await import_rows(
        uow=lambda: FakeUnitOfWork(db), rows=file_rows(sample()), chunk_rows=10, writers=writers
    )
    assert (report.accepted, report.rejected, report.errors) == (252, 0, [])
    assert db.most_open_writes == writers
    assert db.open_writes == 0  # every write ended before the import returned
    assert len(db.productions) == len(set(db.productions)) == 240
    assert db.events == 252


async def test_a_chunk_holding_enterprises_waits_for_the_writes_before_it() -> None:
    rows = sample(enterprises=30, productions=300)
    enterprises, productions = rows[:30], rows[30:]
    first = {e["credit_code"] for e in enterprises[:15]}
    theirs = [p for p in productions if p["enterprise_credit_code"] in first]
    others = [p for p in productions if p["enterprise_credit_code"] not in first]
    mixed = enterprises[:15] + theirs + enterprises[15:] + others  # more enterprises mid-file
    db = FakeDatabase(write_seconds=0.1)  # still writing when the enterprises are read
    report = await import_rows(
        uow=lambda: FakeUnitOfWork(db), rows=file_rows(mixed), chunk_rows=10, writers=3
    )
    assert (report.accepted, report.rejected) == (330, 0)
    assert db.most_open_writes == 3
    assert db.overlapped_enterprise_writes == 0
    assert len(set(db.productions)) == 300


async def test_a_failed_write_fails_the_import_once_the_others_have_ended() -> None:
    db = FakeDatabase(fail_at_write=4)
    with pytest.raises(WriteFailedError):
        await import_rows(
            uow=lambda: FakeUnitOfWork(db), rows=file_rows(sample()), chunk_rows=10, writers=3
        )
    assert db.open_writes == 0
    assert 3 <= len(db.productions) // 10 < 24  # chunks before (and beside) it committed
