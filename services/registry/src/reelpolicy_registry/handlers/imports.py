"""Importing a file's rows: validate every row, upsert the valid ones, report the rest.

Rows are handled in chunks (one transaction each): enterprises of the chunk first,
then its productions, which find their enterprise by credit code (or id) among the
stored ones. A production whose enterprise (by credit code) is not stored yet waits
(in memory) until the whole file is read, so the order of rows does not matter: an
enterprise later in the file still gets its productions. Idempotent: enterprises by
credit code, productions by (enterprise, external_id) or, without an external_id, by
a fingerprint of the row (:func:`fingerprint`); unchanged rows are neither written
nor announced. Each created or changed row emits exactly one event (outbox).
Productions of enterprises this import created cannot exist yet and are inserted
without conflict handling (:func:`_store_productions`); the others are upserted.

Chunks overlap (:class:`_ChunkWrites`): while chunks of productions are written, up to
``writers`` at once on as many connections, the next chunk is parsed and staged, so
Python's work and the database's share the machine. A chunk holding enterprises is
written alone, once every chunk before it has committed, and commits before the next
chunk is staged: a production always finds an enterprise stored before it, and its
enterprise's event is before its own in the outbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from itertools import islice

from reelpolicy_common.gc_control import gc_paused
from reelpolicy_common.switch_interval import short_switch_interval
from reelpolicy_contracts import topics
from reelpolicy_contracts.ids import uuid7, uuid7_text
from reelpolicy_registry.domain.events import production_upserted_head, raw_enterprise_event
from reelpolicy_registry.domain.import_files import RawRow, RowError
from reelpolicy_registry.domain.import_validation import (
    ValidatedChunk,
    ValidEnterprise,
    ValidProduction,
    validate_chunk,
    with_enterprise_id,
)
from reelpolicy_registry.ports import ProductionStage, UnitOfWork, UowFactory


@dataclass
class ImportReport:
    accepted: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    def reject(self, errors: Iterable[RowError]) -> None:
        before = len(self.errors)
        self.errors.extend(errors)
        self.rejected += len({e.row for e in self.errors[before:]})


@dataclass
class _Seen:
    """What earlier chunks established: keys already imported, enterprises found."""

    credit_codes: dict[str, int] = field(default_factory=dict)
    productions: dict[tuple[str, str, str], int] = field(default_factory=dict)
    enterprise_by_code: dict[str, str] = field(default_factory=dict)
    live_ids: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)  # ids of enterprises this import created


@dataclass
class _StagedProductions:
    """A chunk's valid productions: of enterprises this import created (new for sure),
    and of the others (upserted)."""

    new: list[ProductionStage] = field(default_factory=list)
    upserted: list[ProductionStage] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.new or self.upserted)


def _valid_enterprises(
    rows: list[ValidEnterprise], seen: _Seen, report: ImportReport
) -> list[tuple[uuid.UUID, str, str]]:
    staged = []
    for number, credit_code, text in rows:
        first = seen.credit_codes.setdefault(credit_code, number)
        if first != number:
            report.reject([RowError(number, "credit_code", f"repeats row {first}")])
            continue
        staged.append((uuid7(), credit_code, text))
    return staged


def _unresolved(rows: list[ValidProduction], seen: _Seen) -> tuple[set[str], set[str]]:
    """The credit codes and enterprise ids of ``rows`` not looked up yet."""
    codes = {code for _, code, _, _, _ in rows if code}
    ids = {given for _, code, given, _, _ in rows if given and not code}
    return codes - seen.enterprise_by_code.keys(), ids - seen.live_ids


async def _look_up(work: UnitOfWork, codes: set[str], ids: set[str], seen: _Seen) -> None:
    """Record which of ``codes`` and ``ids`` name live enterprises, and their ids."""
    by_code, live = await work.import_staging.enterprise_ids(
        credit_codes=list(codes), ids=list(ids)
    )
    seen.enterprise_by_code.update(by_code)
    seen.live_ids.update(live)


async def _resolve(work: UnitOfWork, rows: list[ValidProduction], seen: _Seen) -> None:
    codes, ids = _unresolved(rows, seen)
    if codes or ids:
        await _look_up(work, codes, ids, seen)


def _valid_productions(
    rows: list[ValidProduction],
    seen: _Seen,
    report: ImportReport,
    waiting: list[ValidProduction] | None,
) -> _StagedProductions:
    """Stage the rows whose enterprise is known; reject the others, or, while the file
    is still being read (``waiting`` given), keep those whose credit code is unknown.

    A row repeating an earlier row of the file (the same ``external_id``, or, without
    one, the same attributes) is rejected."""
    staged = _StagedProductions()
    for row in rows:
        number, credit_code, enterprise_id, external_id, attributes = row
        if credit_code:
            given, enterprise_id = enterprise_id, seen.enterprise_by_code.get(credit_code, "")
            if not enterprise_id and waiting is not None:
                waiting.append(row)  # its enterprise may come later in the file
                continue
            if not enterprise_id or given not in ("", enterprise_id):
                report.reject([RowError(number, "enterprise_credit_code", "no such enterprise")])
                continue
        elif enterprise_id not in seen.live_ids:
            report.reject([RowError(number, "enterprise_id", "no such enterprise")])
            continue
        attributes = with_enterprise_id(attributes, enterprise_id)
        import_key = None if external_id is not None else fingerprint(attributes)
        key = (enterprise_id, external_id or "", import_key or "")
        first = seen.productions.setdefault(key, number)
        if first != number:
            field_name = "external_id" if import_key is None else "row"
            report.reject([RowError(number, field_name, f"repeats row {first}")])
            continue
        stage = (uuid7_text(), enterprise_id, external_id, import_key, attributes)
        (staged.new if enterprise_id in seen.created else staged.upserted).append(stage)
    return staged


def fingerprint(attributes_json: bytes) -> str:
    """The import key of a production without an ``external_id``: a digest of its
    attributes (its enterprise among them), so the same row imported again is found."""
    return hashlib.blake2b(attributes_json, digest_size=16).hexdigest()


@dataclass
class _Parsed:
    """One chunk: its size (rows handed over) and what validation made of it."""

    size: int
    errors: list[RowError] = field(default_factory=list)
    enterprises: list[ValidEnterprise] = field(default_factory=list)
    productions: list[ValidProduction] = field(default_factory=list)


class _Validation:
    """Chunks read from the rows and validated ahead, up to ``ahead`` at once, in
    ``validators`` (a process pool; None: a thread of the event loop's default pool)."""

    def __init__(
        self, rows: Iterable[RawRow | RowError], size: int, validators: Executor | None, ahead: int
    ) -> None:
        self._rows = iter(rows)
        self._size = size
        self._validators = validators
        self._pending: deque[tuple[int, list[RowError], asyncio.Future[ValidatedChunk]]] = deque()
        for _ in range(ahead):
            self._submit()

    def _submit(self) -> None:
        batch = list(islice(self._rows, self._size))
        records = [(r.row, r.data) for r in batch if isinstance(r, RawRow)]
        unreadable = [r for r in batch if isinstance(r, RowError)]
        future = asyncio.get_running_loop().run_in_executor(
            self._validators, validate_chunk, records
        )
        self._pending.append((len(batch), unreadable, future))

    async def next(self) -> _Parsed:
        """The next chunk (size 0 once the rows are exhausted)."""
        size, unreadable, future = self._pending.popleft()
        self._submit()
        chunk = await future
        return _Parsed(size, unreadable + chunk.errors, chunk.enterprises, chunk.productions)

    async def close(self) -> None:
        """Wait for the validations still running (their results are dropped)."""
        await asyncio.wait([future for _, _, future in self._pending])
        self._pending.clear()


async def _store_chunk(
    work: UnitOfWork,
    parsed: _Parsed,
    seen: _Seen,
    report: ImportReport,
    waiting: list[ValidProduction] | None,
) -> None:
    enterprises = _valid_enterprises(parsed.enterprises, seen, report)
    if enterprises:
        json_by_code = {code: text for _, code, text in enterprises}
        changed = await work.import_staging.upsert_enterprises(enterprises)
        for r in changed:  # their productions need no look-up
            seen.enterprise_by_code[r["credit_code"]] = r["id"]
            if r["version"] == 1:  # inserted (an update raises the version)
                seen.created.add(r["id"])
        events = [
            raw_enterprise_event(r["id"], r["version"], json_by_code[r["credit_code"]])
            for r in changed
        ]
        # before the productions' events: a consumer meets an enterprise first
        await work.publish_many(topics.REGISTRY, events)
        report.accepted += len(changed)
        report.unchanged += len(enterprises) - len(changed)
    if parsed.productions:
        await _resolve(work, parsed.productions, seen)
        productions = _valid_productions(parsed.productions, seen, report, waiting)
        await _store_productions(work, productions, report)


async def _store_productions(
    work: UnitOfWork, productions: _StagedProductions, report: ImportReport
) -> None:
    head = production_upserted_head()
    upserted = productions.upserted
    if productions.new:
        if await work.import_staging.insert_new_productions(productions.new, events=head):
            report.accepted += len(productions.new)
        else:  # one was created meanwhile (through the API): upsert them all
            upserted = upserted + productions.new
    if upserted:
        changed_count = await work.import_staging.upsert_productions(upserted, events=head)
        report.accepted += changed_count
        report.unchanged += len(upserted) - changed_count


class _ChunkWrites:
    """The chunk transactions. A chunk holding enterprises is written alone, after
    every chunk before it has committed. Chunks of productions only are written as
    tasks, up to ``writers`` at once (on as many connections), while the next chunk is
    prepared; they may commit in any order, as they touch different productions and
    their enterprises are committed already (the relay publishes rows that commit
    behind others too)."""

    def __init__(self, uow: UowFactory, report: ImportReport, *, writers: int) -> None:
        self._uow = uow
        self._report = report
        self._writers = writers
        self._in_flight: list[asyncio.Task[None]] = []

    async def wait(self) -> None:
        """Return once every chunk handed over is committed (or raise an error of one)."""
        while self._in_flight:
            await self._in_flight.pop(0)

    async def store_chunk(
        self, parsed: _Parsed, seen: _Seen, waiting: list[ValidProduction] | None
    ) -> None:
        """Store a chunk that may hold enterprises, after the writes before it."""
        await self.wait()
        async with self._uow() as work:
            await _store_chunk(work, parsed, seen, self._report, waiting)
            await work.commit()

    async def prepare_productions(
        self,
        rows: list[ValidProduction],
        seen: _Seen,
        waiting: list[ValidProduction],
    ) -> _StagedProductions:
        """Stage a chunk of productions while earlier chunks are written: their
        enterprises are looked up among the committed ones (each earlier chunk holding
        enterprises has committed: :meth:`store_chunk`)."""
        codes, ids = _unresolved(rows, seen)
        if codes or ids:
            async with self._uow() as lookup:
                await _look_up(lookup, codes, ids, seen)
        # in a thread, so the event loop keeps feeding the chunks in flight to the database
        return await asyncio.to_thread(_valid_productions, rows, seen, self._report, waiting)

    async def start_productions(self, productions: _StagedProductions) -> None:
        """Hand over a prepared chunk, once fewer than ``writers`` are in flight."""
        if productions.empty:
            return
        while len(self._in_flight) >= self._writers:
            await self._in_flight.pop(0)
        self._in_flight.append(asyncio.create_task(self._write(productions)))

    async def _write(self, productions: _StagedProductions) -> None:
        async with self._uow() as work:
            await _store_productions(work, productions, self._report)
            await work.commit()

    async def abandon(self) -> None:
        """After an error: let the chunks in flight end (committed or not), quietly."""
        if self._in_flight:
            await asyncio.wait(self._in_flight)
            for task in self._in_flight:  # their errors, if any, give way to the first one
                if not task.cancelled():
                    task.exception()
            self._in_flight = []


async def import_rows(
    *,
    uow: UowFactory,
    rows: Iterable[RawRow | RowError],
    chunk_rows: int = 20_000,
    writers: int = 2,
    validators: Executor | None = None,
    validate_ahead: int = 1,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import ``rows`` (from :mod:`reelpolicy_registry.domain.import_files`); returns the
    per-row report.

    While chunks are being stored (up to ``writers`` at once), the next ones
    (``validate_ahead``) are read and validated in ``validators``, a process pool
    (:mod:`reelpolicy_registry.adapters.import_workers`), or by default in a thread
    (:mod:`reelpolicy_registry.domain.import_validation`). The cyclic
    garbage collector is paused meanwhile (:mod:`reelpolicy_common.gc_control`) and
    threads switch more often (:mod:`reelpolicy_common.switch_interval`). ``progress``
    counts the rows handed over.
    """
    with gc_paused(), short_switch_interval():
        report = ImportReport()
        seen = _Seen()
        waiting: list[ValidProduction] = []  # productions before their enterprise
        writes = _ChunkWrites(uow, report, writers=writers)
        validation = _Validation(rows, chunk_rows, validators, validate_ahead)
        try:
            while (parsed := await validation.next()).size:
                report.reject(parsed.errors)
                if parsed.enterprises:
                    await writes.store_chunk(parsed, seen, waiting)
                elif parsed.productions:
                    staged = await writes.prepare_productions(parsed.productions, seen, waiting)
                    await writes.start_productions(staged)
                if progress is not None:
                    progress(parsed.size)
            await writes.wait()
        finally:
            await writes.abandon()
            await validation.close()
        for start in range(0, len(waiting), chunk_rows):  # now every enterprise is stored
            late = _Parsed(0, productions=waiting[start : start + chunk_rows])
            await writes.store_chunk(late, seen, None)
    report.errors.sort(key=lambda e: e.row)
    return report
